"""The pretraining stage's console (lrl.train.pretrain_progress): Ray Data's per-epoch INFO lines
of the training data and transformers' progress bars stay off it; Ray Data's log files keep its
lines, and its warnings still print.

The tests' Ray runs with ``log_to_driver=False``, so what an actor prints never reaches pytest's
capture; the checks read what the actor writes to its stderr (its console, which Ray forwards to
the driver) and the session's Ray Data log folder."""

from __future__ import annotations

import io
import logging
import sys
import uuid
from pathlib import Path

from pretrain_jobs import _job


def _ray_data_log_text() -> str:
    """Everything in this Ray session's Ray Data log folder (the "Full logs are in" one)."""
    from ray.data._internal.logging import get_log_directory

    return "".join(p.read_text(errors="replace") for p in Path(get_log_directory()).glob("*.log"))


def _console_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger("ray.data").handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]


def test_an_actor_running_the_dataset_logs_its_info_lines_to_file_only(ray_session):
    """The mechanism, in an actor like Ray Train's split coordinator: the dataset's DataContext
    carries the callback, which quiets the console of the process that executes it."""
    import ray
    import ray.data

    from lrl.train.pretrain_progress import QuietDataConsole, quiet_data_console

    @ray.remote(num_cpus=0)
    class Runner:
        def run(self, ds) -> str:
            seen, sys.stderr = sys.stderr, io.StringIO()  # Ray's console handler writes to it
            try:
                ds.take_all()
                logging.getLogger("ray.data.lrl_probe").warning("lrl probe warning")
                return sys.stderr.getvalue()
            finally:
                sys.stderr = seen

    name = f"probe{uuid.uuid4().hex[:8]}"
    ds = ray.data.from_items([{"x": i} for i in range(8)]).map_batches(lambda b: b)
    ds.set_name(name)
    quiet_data_console(ds)
    quiet_data_console(ds)  # once is enough
    assert ds.context.custom_execution_callback_classes.count(QuietDataConsole) == 1
    assert QuietDataConsole not in ray.data.DataContext.get_current().custom_execution_callback_classes
    console = ray.get(Runner.remote().run.remote(ds))
    assert "lrl probe warning" in console  # warnings still print
    assert f"Dataset {name}" not in console, console
    logs = _ray_data_log_text()
    assert f"Execution plan of Dataset {name}" in logs and f"Dataset {name}" in logs
    # in the driver (generate's Ray Data progress prints there) the callback changes nothing
    levels = [h.level for h in _console_handlers()]
    QuietDataConsole()
    assert [h.level for h in _console_handlers()] == levels


def test_transformers_bars_are_off_inside_the_block_only():
    from transformers.utils import logging as hf_logging

    from lrl.train.pretrain_progress import no_transformers_bars

    was_on = hf_logging.is_progress_bar_enabled()  # other tests may have turned them off
    try:
        hf_logging.enable_progress_bar()
        with no_transformers_bars():
            assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        with no_transformers_bars():
            pass
        assert not hf_logging.is_progress_bar_enabled()  # off before: stays off
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()


def test_pretraining_console_has_progress_lines_but_no_epoch_lines_or_bars(tmp_path, ray_session, capfd):
    """A tiny run over several epochs: the split coordinator's and Train worker's consoles (their
    stderr files) hold no Ray Data epoch line and no transformers bar, the worker's stdout holds
    lrl's progress line, and Ray Data's log folder holds the epoch lines."""
    from ray.data._internal.logging import get_log_directory

    from lrl.cli import main

    job = _job(tmp_path, {"engine": "torch", "cpus_per_worker": 1, "steps": 40, "eval_every": 0})
    assert main(["pretrain", str(job)]) == 0
    _, err = capfd.readouterr()
    assert "Writing model shards" not in err  # the driver saves the initial model
    logs = Path(get_log_directory()).parent
    coordinators = [p for p in logs.glob("worker-*.err") if ":actor_name:SplitCoordinator" in p.read_text(errors="replace")]
    assert coordinators
    for p in coordinators:
        text = p.read_text(errors="replace")
        assert "Dataset train_" not in text, (p, text[-2000:])
    trainers = [p for p in logs.glob("worker-*.out") if "pretrain: step 40/40" in p.read_text(errors="replace")]
    assert trainers
    for p in trainers:
        text = p.with_suffix(".err").read_text(errors="replace")
        assert "Loading weights" not in text and "Writing model shards" not in text, (p, text[-2000:])
    data_logs = _ray_data_log_text()
    assert "Execution plan of Dataset train_" in data_logs and "execution finished" in data_logs
    assert list(Path(get_log_directory()).glob("ray-data-train_*_1.log"))  # a second epoch ran
