"""What the generate runner chains: steps that map a Ray Dataset of schema rows to another.

A step may add rows (augmentation, translation) and may mark rows as rejected by setting the
``reject`` column (``lrl.data.schema.REJECT``) to a reason; the runner moves those rows to the
rejects dataset and counts them per reason in the manifest. Nothing is dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import ray.data


class Step(Protocol):
    """One generation step over a Ray Dataset of NER rows (``NER_SCHEMA`` columns)."""

    name: str

    def apply(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        """Return the dataset after this step (lazy; nothing is executed here)."""
        ...
