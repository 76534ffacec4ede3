"""What the generate runner chains: steps that map a Ray Dataset of schema rows to another.

A step may add rows (augmentation, translation) and may mark rows as rejected by setting the
``reject`` column (``lrl.data.schema.REJECT``) to a reason; the runner moves those rows to the
rejects dataset and counts them per reason in the manifest. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    import ray.data


class Step(Protocol):
    """One generation step over a Ray Dataset of NER rows (``NER_SCHEMA`` columns).

    A step that multiplies rows may also define ``row_weights(table) -> np.ndarray`` (how many
    rows each input row becomes); when it runs first, the stage cuts its blocks to equal output."""

    name: str

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        """Return the dataset after this step (lazy; nothing is executed here)."""
        ...


def map_slices(ds: ray.data.Dataset, fn: Callable[..., Any], rows: int, *, compute: Any = None,
               constructor_kwargs: dict[str, Any] | None = None, **fn_kwargs: Any) -> ray.data.Dataset:
    """``ds.map_batches`` over whole blocks, calling ``fn`` on slices of at most ``rows`` rows.

    Why not ``batch_size=rows``: Ray Data (2.60) gives every task of a fused chain at least the
    largest ``batch_size`` in the chain, counted in the chain's *input* rows, by bundling input
    blocks. For steps that multiply rows (oversampling, augmentation) that collapses the work into
    a few tasks: 2,561 sentences in 8 blocks, oversampled to 200k rows with a 2,048-row augment
    batch, ran as 2 tasks of 7 blocks and 1 block, one CPU idle most of the run. With whole blocks
    the stage's block plan alone decides the tasks, and the slices keep each call's memory bounded.

    ``fn`` is a function, or a class (run in an actor pool given as ``compute``) constructed with
    ``constructor_kwargs``; it returns a table or yields tables."""
    from lrl.runtime import freeze_worker_heap

    freeze = freeze_worker_heap()  # read here, in the driver: it travels with the task
    if isinstance(fn, type):
        # A subclass named like ``fn`` so that progress bars and stats show ``MapBatches(AugmentBatch)``.
        actor = type(fn.__name__, (_SlicedCall,), {})
        return ds.map_batches(actor, fn_constructor_kwargs={"cls": fn, "rows": rows, "kwargs": constructor_kwargs or {},
                                                            "freeze": freeze},
                              batch_format="pyarrow", batch_size=None, compute=compute)

    def sliced(block: pa.Table) -> Iterator[pa.Table]:
        yield from call_sliced(block, fn, rows, fn_kwargs, freeze)

    sliced.__name__ = sliced.__qualname__ = getattr(fn, "__name__", type(fn).__name__)
    return ds.map_batches(sliced, batch_format="pyarrow", batch_size=None, compute=compute)


def call_sliced(block: pa.Table, fn: Callable[..., Any], rows: int, kwargs: dict[str, Any],
                freeze: bool = False) -> Iterator[pa.Table]:
    """Yield ``fn``'s output for each slice of ``block`` of at most ``rows`` rows (zero-copy slices).
    With ``freeze``, the process's heap is frozen after ``fn``'s first slice (``freeze_after_first``)."""
    step = max(1, rows)
    for start in range(0, block.num_rows, step):
        out = fn(block.slice(start, step), **kwargs)
        if isinstance(out, pa.Table):
            yield out
        else:
            yield from out
        if freeze and start == 0:  # later slices of a block cannot be a process's first
            freeze_after_first(fn)


#: The callables whose first slice this process has run with ``freeze`` on.
_FROZEN_AFTER: set[str] = set()


def freeze_after_first(fn: Callable[..., Any]) -> bool:
    """Once per process and callable: collect, then move every object alive into the permanent GC
    generation (``gc.freeze``); True when it did so now.

    Why: full collections traverse every tracked object, and after its first slice a worker holds
    ~115k long-lived ones (imported modules, the step's resources, fetched once per process) that
    the per-row work never frees. Frozen, they are skipped; the workers of the augment benchmark
    spent ~4x less time in the collector (``RayConfig.freeze_worker_heap``). After the first
    slice, not before: the step's lazily fetched resources and imports exist by then. Once per
    callable: the chained steps of a task each bring their own."""
    import gc

    key = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    if key in _FROZEN_AFTER:
        return False
    _FROZEN_AFTER.add(key)
    gc.collect()  # garbage alive now is collected, not frozen
    gc.freeze()
    return True


class _SlicedCall:
    """The actor form of ``call_sliced``: ``cls(**kwargs)`` is built once per actor."""

    def __init__(self, cls: type, rows: int, kwargs: dict[str, Any], freeze: bool = False) -> None:
        self.fn, self.rows, self.freeze = cls(**kwargs), rows, freeze

    def __call__(self, block: pa.Table) -> Iterator[pa.Table]:
        yield from call_sliced(block, self.fn, self.rows, {}, self.freeze)
