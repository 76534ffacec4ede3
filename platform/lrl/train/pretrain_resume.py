"""Which checkpoint a pretraining attempt starts from, and what makes a checkpoint complete.

Ray Train 2.60 registers a reported checkpoint only when its controller next polls the workers
(every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``: 0.5 s under lrl, Ray's default 2 s), and only the
registered ones are in the run's ``checkpoint_manager_snapshot.json`` that a rerun's
``ray.train.get_checkpoint()`` reads. A run stopped between a report and that poll (a Ctrl-C:
Ray aborts the workers with the report still in a worker's queue; the driver killed; a node
lost) left the newer checkpoint folder on disk, complete, while the rerun resumed from the one
before it. Measured on a tiny run (checkpoints at steps 2 and 4, the driver stopped right after
the step-4 report, before the controller's next poll): ``attempt_start_steps`` of the rerun was
``[0, 2]`` after a Ctrl-C and after a SIGKILL of the driver; with both reports within one
poll interval Ray had written no snapshot at all (a rerun starts at step 0). The steps since
then trained again, though ``fit_or_stop`` had said the checkpoints were kept
(tests/test_pretrain_resume.py, ``test_ctrl_c_before_ray_registers_the_last_checkpoint_resumes_from_it``).

So the loop marks each checkpoint complete itself (``mark_complete``: once every rank's
``ray.train.report`` has returned, i.e. uploaded its part), and each attempt starts from the
newest of the marked checkpoints and Ray's registered one (``resume_checkpoint``), on local
storage and on object stores (``output.root`` on s3://: Ray Train's ``storage_path``) alike. A folder
without the marker (an upload cut short, one Ray was deleting) is never picked over Ray's. A
resumed-from checkpoint that Ray never registered is never deleted by Ray's ``num_to_keep``: it
stays in the run folder (removed with it once the stage is committed).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Any

import pyarrow.fs as pafs

from lrl.data.files import filesystem

#: Written into a checkpoint folder last, by rank 0, after every rank's upload returned.
MARKER = "lrl_complete.json"


def mark_complete(checkpoint, step: int, final: bool = False) -> None:
    """Mark a persisted checkpoint (``ray.train.get_checkpoint()`` right after its report) as
    complete, on local storage or an object store (``checkpoint.filesystem``). A half-written
    marker is no marker: locally it is written to a temporary name and renamed; an object store
    makes an object visible only once it is whole."""
    path = getattr(checkpoint, "path", None)
    fs = getattr(checkpoint, "filesystem", None)
    if not path:
        return
    if fs is None or isinstance(fs, pafs.LocalFileSystem):
        if not os.path.isdir(path):
            return
        tmp = os.path.join(path, MARKER + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"step": int(step), "final": final}, f)
        os.replace(tmp, os.path.join(path, MARKER))
        return
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return
    with fs.open_output_stream(f"{str(path).rstrip('/')}/{MARKER}") as f:
        f.write(json.dumps({"step": int(step), "final": final}).encode("utf-8"))


def _marked(folder: str | None) -> tuple[pafs.FileSystem | None, str, list[str]]:
    """The filesystem and path of the run folder ``folder`` (local or a URI), and the names of
    its checkpoint folders that hold the ``MARKER``."""
    if not folder:
        return None, "", []
    fs, inner = filesystem(folder)
    try:
        found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    except OSError:  # not a folder
        return fs, inner, []
    names = [i.base_name for i in found if i.base_name.startswith("checkpoint_") and i.type == pafs.FileType.Directory]
    return fs, inner, [n for n in names if fs.get_file_info(f"{inner}/{n}/{MARKER}").type == pafs.FileType.File]


def resume_checkpoint(registered, folder: str | None, rank: int = 0):
    """The checkpoint to start from: the newest complete one in ``folder`` (the run's Ray Train
    experiment folder, local or on an object store) or ``registered`` (Ray's ``get_checkpoint()``),
    whichever is newer; None when there is neither. Rank 0 says which, and at which step: a rerun
    that resumed from Ray's checkpoint went straight to "step 120/400" with nothing but Ray's own
    snapshot message.

    Ray names checkpoint folders ``checkpoint_<date and time, microseconds>`` from rank 0's clock
    when it reports, so within one run folder the names sort in the order the checkpoints were
    reported. Every rank decides alike: the folder is shared and nothing writes to it while an
    attempt starts."""
    import ray.train

    chosen, why = registered, ""
    fs, inner, marked = _marked(folder)
    newest = max(marked) if marked else None
    if newest is not None and (registered is None or os.path.basename(str(registered.path).rstrip("/")) < newest):
        chosen = ray.train.Checkpoint(f"{inner.rstrip('/')}/{newest}", filesystem=fs)
        why = (f", newer than Ray Train's last registered checkpoint "
               f"({'none' if registered is None else os.path.basename(str(registered.path))}): the run stopped "
               "before Ray recorded it")
    if chosen is not None and rank == 0:
        mark = _marker(chosen)
        if not mark.get("final"):  # a finished run's final model is reported again, not resumed
            # Not print(): Ray Train's workers replace it with one that logs the line and, as Ray
            # wraps the worker's stderr, prints it too: the line came twice (ProgressLine.show).
            sys.stderr.write(f"pretrain: resuming from {os.path.basename(str(chosen.path).rstrip('/'))} "
                             f"(step {mark.get('step', '?')}){why}\n")
            sys.stderr.flush()
    return chosen


def _marker(checkpoint) -> dict[str, Any]:
    """A checkpoint's ``MARKER`` ({"step", "final"}), or {} when it has none (a checkpoint of
    older code, or one Ray registered whose marker is elsewhere)."""
    fs = getattr(checkpoint, "filesystem", None) or pafs.LocalFileSystem()
    try:
        with fs.open_input_stream(f"{str(checkpoint.path).rstrip('/')}/{MARKER}") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}


def report_if_finished(ckpt, rank: int, without_history) -> bool:
    """If ``ckpt`` is a finished run's final model (``pretrain_loop._final_save``), report it
    again and say so.

    That is the latest checkpoint when a run that had finished is started again in the same run
    folder, e.g. after a crash between training and committing the stage's folder. It holds no
    engine state to resume from, and the run has nothing left to do."""
    import ray.train

    with ckpt.as_directory() as d, tempfile.TemporaryDirectory(prefix="lrl-final-") as again:
        path = os.path.join(d, "metrics.json")
        if not (os.path.isdir(os.path.join(d, "model")) and os.path.isfile(path)):
            return False
        with open(path, encoding="utf-8") as f:
            final: dict[str, Any] = json.load(f)
        final.pop("marks", None)  # the finished attempt's clock, not this one's
        final["reused_final_checkpoint"] = True
        if rank == 0:
            shutil.copytree(d, again, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MARKER))
            with open(os.path.join(again, "metrics.json"), "w", encoding="utf-8") as f:
                json.dump(final, f, indent=1, default=str)
        ray.train.report(without_history(final),
                         checkpoint=ray.train.Checkpoint.from_directory(again) if rank == 0 else None)
        if rank == 0:
            mark_complete(ray.train.get_checkpoint(), final.get("step", 0), final=True)
    return True


def has_checkpoint(folder: str) -> bool:
    """Whether Ray Train's run folder ``folder`` (local or on an object store) holds a checkpoint
    folder, complete or not: something a rerun could resume from (Ray's registered checkpoint or
    a marked one, ``resume_checkpoint``), or a failure's state worth keeping."""
    fs, inner = filesystem(folder)
    try:
        found = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    except OSError:  # not a folder
        return False
    return any(i.base_name.startswith("checkpoint_") and i.type == pafs.FileType.Directory for i in found)


__all__ = ["MARKER", "mark_complete", "resume_checkpoint", "report_if_finished", "has_checkpoint"]
