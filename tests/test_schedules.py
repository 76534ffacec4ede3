import pytest

from lrl.train.schedules import ScheduleConfig, schedule_factor


def curve(cfg, total=100):
    return [schedule_factor(cfg, s, total) for s in range(total)]


def test_one_cycle_shape():
    c = curve(ScheduleConfig(type="one_cycle", pct_start=0.3, div_factor=25, final_div=1e4))
    peak = max(range(100), key=c.__getitem__)
    assert 28 <= peak <= 31
    assert c[0] == pytest.approx(1 / 25, rel=1e-3)
    assert all(a <= b + 1e-12 for a, b in zip(c[:peak], c[1 : peak + 1]))  # rises
    assert all(a >= b - 1e-12 for a, b in zip(c[peak:], c[peak + 1 :]))  # then falls
    assert c[-1] < 0.01


def test_triangular_cycles():
    c = curve(ScheduleConfig(type="triangular", cycle_steps=20, cycle_div=10))
    assert c[0] == pytest.approx(0.1) and c[10] == pytest.approx(1.0) and c[20] == pytest.approx(0.1)
    assert c[30] == pytest.approx(1.0)


def test_linear_warmup_then_decay():
    c = curve(ScheduleConfig(type="linear", warmup_ratio=0.1))
    assert c[0] == pytest.approx(0.1) and c[9] == pytest.approx(1.0)
    assert c[-1] < 0.02 and c[50] < c[20]


def test_cosine_floor():
    c = curve(ScheduleConfig(type="cosine", warmup_ratio=0.0, min_ratio=0.2))
    assert min(c) == pytest.approx(0.2, abs=1e-3) and c[0] == pytest.approx(1.0)


@pytest.mark.parametrize("total", [7, 20, 100])
def test_one_cycle_starts_and_ends_as_documented(total):
    """The first step trains at base/div_factor and the last one at base/final_div; the last step
    of a 20-step run used to train at base/80 (t = step/total never reached 1)."""
    cfg = ScheduleConfig(type="one_cycle", pct_start=0.3, div_factor=25, final_div=1e4)
    c = curve(cfg, total)
    assert c[0] == pytest.approx(1 / 25) and c[-1] == pytest.approx(1e-4)
    assert max(c) == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("period", [2, 3, 5, 7, 20])
def test_triangular_reaches_base_and_low_point_every_cycle(period):
    """Documented as cycling between base/cycle_div and base: an odd cycle (the default quarter of
    a 20-step run is 5 steps) peaked at 0.82 x base and never trained at the base rate."""
    c = curve(ScheduleConfig(type="triangular", cycle_steps=period, cycle_div=10), 3 * period)
    for cycle in range(3):
        one = c[cycle * period: (cycle + 1) * period]
        assert max(one) == pytest.approx(1.0) and min(one) == pytest.approx(0.1)
        peak = one.index(max(one))
        assert all(a < b for a, b in zip(one[:peak], one[1:peak + 1]))  # rises to the peak
        assert all(a > b for a, b in zip(one[peak:], one[peak + 1:]))  # then falls
    default = curve(ScheduleConfig(type="triangular", cycle_div=10), 20)  # cycle_steps None: 5 steps
    assert max(default) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["one_cycle", "triangular"])
def test_schedules_with_their_own_rise_refuse_a_warmup(kind):
    """``schedule_factor`` reads no warmup for one_cycle and triangular: triangular with
    ``warmup_ratio: 0.2`` trained without any warmup and said nothing (one_cycle was refused)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=f"{kind} has its own rise .* leave warmup_ratio unset"):
        ScheduleConfig(type=kind, warmup_ratio=0.2)
    ScheduleConfig(type=kind, warmup_ratio=0.0)  # 0 and the untouched default are accepted
    ScheduleConfig(type=kind)


def test_a_triangular_cycle_longer_than_the_run_is_warned(caplog):
    """12 steps of a 100-step cycle peaked at 0.30 x lr, and nothing said so; a cycle that fits
    says nothing."""
    import logging

    import torch

    from lrl.train.schedules import build_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with caplog.at_level(logging.WARNING, logger="lrl.train.schedules"):
        build_scheduler(opt, ScheduleConfig(type="triangular", cycle_steps=100), 12)
        assert "cycle_steps=100 rises for 50 steps but the run has 12: the learning rate peaks at 0.30x" in caplog.text
        caplog.clear()
        build_scheduler(opt, ScheduleConfig(type="triangular", cycle_steps=20), 12)
        build_scheduler(opt, ScheduleConfig(type="triangular"), 12)
        build_scheduler(opt, ScheduleConfig(type="triangular"), 1)  # a 1-step run: nothing to climb
    assert caplog.text == ""


def _warnings(caplog, cfg, total):
    """What ``build_scheduler`` logs for ``cfg`` over ``total`` steps, and its learning rates."""
    import logging

    import torch

    from lrl.train.schedules import build_scheduler

    caplog.clear()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with caplog.at_level(logging.WARNING, logger="lrl.train.schedules"):
        sched = build_scheduler(opt, cfg, total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return caplog.text, lrs


def test_a_one_cycle_run_too_short_to_reach_its_peak_is_warned(caplog):
    """one_cycle over 2 steps trained at 0.04x then 0.0001x lr, over 3 it peaked at 0.81x, and
    nothing said so (triangular warned); the rates themselves stay as they were."""
    cfg = ScheduleConfig(type="one_cycle")
    said, lrs = _warnings(caplog, cfg, 2)
    assert "schedule one_cycle: no step of the run's 2 falls on the peak (pct_start=0.3): the learning rate " \
           "peaks at 0.04x lr; run more steps\n" in said
    assert lrs == pytest.approx([0.04, 1e-4])
    said, lrs = _warnings(caplog, cfg, 3)
    assert "peaks at 0.81x lr; run more steps (or set pct_start to k/2)" in said
    assert lrs == pytest.approx([0.04, 0.8118, 1e-4], abs=1e-4)
    for total in (1, 4, 7, 20, 100):  # peaks at 0.99x or more (a 1-step run has nothing to climb)
        assert _warnings(caplog, cfg, total)[0] == ""
    assert _warnings(caplog, ScheduleConfig(type="one_cycle", pct_start=0.5), 3)[0] == ""  # step 1 is the peak


def test_a_warmup_that_rounds_to_no_warmup_is_warned(caplog):
    """``int(warmup_ratio * steps)`` warmup steps: 0.06 of 10 steps is none, and a 1-step warmup
    trains at (0 + 1) / 1 = the full lr. Warned, not rounded up: that would change the rates of
    every existing run, which stay as they were."""
    said, lrs = _warnings(caplog, ScheduleConfig(type="linear"), 10)
    assert ("schedule linear: warmup_ratio=0.06 of 10 steps is 0 warmup steps: the run starts at the full lr "
            "(no warmup); a warmup needs warmup_ratio >= 2/10 (or set it to 0)") in said
    assert lrs == pytest.approx([1 - s / 10 for s in range(10)])
    said, lrs = _warnings(caplog, ScheduleConfig(type="cosine"), 20)
    assert "schedule cosine: warmup_ratio=0.06 of 20 steps is 1 warmup step: the run starts at the full lr" in said
    assert lrs[0] == lrs[1] == 1.0
    said, lrs = _warnings(caplog, ScheduleConfig(type="constant"), 34)  # 2 steps: 0.5x, then 1x
    assert said == "" and lrs[:3] == [0.5, 1.0, 1.0]
    assert _warnings(caplog, ScheduleConfig(type="linear", warmup_ratio=0.0), 10)[0] == ""
    assert _warnings(caplog, ScheduleConfig(type="linear"), 1)[0] == ""


@pytest.mark.parametrize("section", ["finetune", "pretrain"])
@pytest.mark.parametrize("kind", ["one_cycle", "triangular"])
def test_a_printed_own_rise_job_loads_again_and_a_real_warmup_is_refused(section, kind, tmp_path):
    """``lrl run --dry-run`` prints every field, warmup_ratio 0.06 included: refusing an explicit
    0.06 with one_cycle or triangular (which ignore it) made such a printed job unloadable. A
    warmup_ratio other than 0 and the default is still an error there."""
    import yaml

    from lrl.config import ConfigError, dump
    from lrl.job import load_job

    with pytest.raises(ConfigError, match=rf"{section}\.schedule.*: .*{kind} has its own rise .* leave warmup_ratio "
                                          r"unset or 0 \(got 0\.2\)"):
        load_job(None, [f"{section}.schedule={{type: {kind}, warmup_ratio: 0.2}}"])
    cfg = load_job(None, [f"{section}.schedule.type={kind}"])
    printed = tmp_path / "job.yaml"
    printed.write_text(dump(cfg), encoding="utf-8")
    assert yaml.safe_load(printed.read_text())[section]["schedule"]["warmup_ratio"] == 0.06
    assert getattr(load_job(str(printed)), section) == getattr(cfg, section)  # the same settings, the same hash
