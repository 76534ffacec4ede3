"""The line a pretraining run prints per report (lrl.train.pretrain_progress)."""

from __future__ import annotations

import logging


def test_line_shows_step_losses_perplexity_and_speed():
    from lrl.train.pretrain_progress import ProgressLine

    m = {"step": 340, "loss": 6.41234, "aux_loss": 1.0771, "ppl_wo": 95.04, "ppl_ug": 812.44,
         "tokens_per_s": 23659.2, "mfu": 0.2731, "lr": 1e-4}
    assert ProgressLine(20000, 0).line(m) == (
        "pretrain: step 340/20000  loss 6.412  aux 1.077  ppl ug 812.4 wo 95.0  |  23.7k tokens/s  MFU 27.3%")
    # No auxiliary task, no evaluation yet, no steps in the window (loss None), a NaN perplexity
    assert ProgressLine(30, 0).line({"step": 1, "loss": None, "ppl_ug": float("nan"), "tokens_per_s": 0}) == (
        "pretrain: step 1/30  loss -  ppl ug -  |  0.0k tokens/s")


def test_lines_are_spaced_in_time_unless_forced_and_only_rank_0_prints(capsys):
    from lrl.train.pretrain_progress import ProgressLine

    m = {"step": 1, "loss": 1.0, "tokens_per_s": 1000.0}
    p = ProgressLine(10, 0, every_s=3600)
    assert p.show(m) and not p.show(m) and p.show(m, force=True)
    assert capsys.readouterr().out.count("pretrain: step 1/10") == 2
    assert not ProgressLine(10, 1).show(m, force=True) and capsys.readouterr().out == ""


def test_ray_trains_whole_dict_report_line_is_quieted():
    from ray.train.v2._internal.execution import context

    from lrl.train.pretrain_progress import quiet_report_log

    logger = logging.getLogger(context.__file__)
    before = logger.level
    try:
        logger.setLevel(logging.NOTSET)
        quiet_report_log()
        assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    finally:
        logger.setLevel(before)


def test_the_line_is_written_once_under_ray_trains_print(capsys, caplog, monkeypatch):
    """Ray Train's workers replace ``print`` with one that logs the message and, with stdout
    wrapped (Ray wraps it), prints it as well: each line reached the driver twice."""
    import builtins

    from ray.train.v2._internal.logging.patch_print import redirected_print

    from lrl.train.pretrain_progress import ProgressLine

    monkeypatch.setattr(builtins, "print", redirected_print)
    with caplog.at_level(logging.INFO):
        ProgressLine(10, 0).show({"step": 3, "loss": 2.0, "tokens_per_s": 5000.0})
    monkeypatch.undo()
    assert capsys.readouterr().out.count("pretrain: step 3/10") == 1
    assert not [r for r in caplog.records if "pretrain: step" in r.getMessage()]
