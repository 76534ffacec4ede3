"""``lrl pretrain CONFIG [overrides]``: multilingual masked-LM pretraining; prints the model folder.

Embedded local Ray by default; joins a cluster when ``RAY_ADDRESS`` (or ``ray.address``) is set.
The tokenizer comes from ``pretrain.tokenizer_path``, else the tokenizer stage (run when needed).
"""

from __future__ import annotations

import argparse
import time

from lrl.cli import add_job_arguments, load_job_args, reused_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_job_args(args)
    from lrl.data.files import read_json
    from lrl.data.output import MANIFEST
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain

    started = time.time()
    path = run_pretrain(StageContext(cfg))
    m = read_json(f"{path}/{MANIFEST}")  # on an object store too
    fraction = cfg.pretrain.heldout_fraction
    if m.get("trained") is False:  # pretrain.steps 0 (pretrain_init_only)
        print(f"pretrain: {path}\n  steps 0: the starting model as built, not trained (pretrain.steps=0)")
        for lang in m.get("languages") or []:
            print(_lang_line(m, lang, fraction, (m.get("train_rows") or {}).get(lang)))
    else:
        _print_trained(m, path, fraction)
    if reused := reused_line(path, started):
        print(reused)
    return 0


def _print_trained(m: dict, path: str, fraction: float) -> None:
    """A trained folder's lines: steps, loss, speed, device, phases and the mixture per language."""
    loss = m.get("loss")  # None when the last report's window held only auxiliary-task steps
    steps = f"{m.get('steps')}"
    if m.get("stopped_early"):  # e.g. "steps 37 of 2000 (stopped by time_limit_s)"
        steps += f" of {m.get('steps_planned')} (stopped by {m['stopped_early']})"
    starts = m.get("attempt_start_steps") or [0]
    if len(starts) > 1:  # tokens/s, MFU and input time below are the whole run's
        steps += f" in {len(starts)} attempts (resumed at step {', '.join(map(str, starts[1:]))})"
    print(f"pretrain: {path}\n  steps {steps}  loss {'-' if loss is None else f'{loss:.4f}'}  "
          f"tokens/s {m.get('tokens_per_s'):.0f}  MFU {m.get('mfu'):.2%}  "
          f"time on input {m.get('input_share') or 0:.0%}")
    aux = _aux_split(m)
    if aux:
        print(aux)
    if m.get("device"):  # which device trained, and why (pretrain.use_gpu, or what auto found)
        name = f" ({m['device_name']})" if m.get("device_name") else ""
        print(f"  trained on {m['device']}{name}: {m.get('device_reason') or '-'}")
    if m.get("checkpoints"):
        print(f"  checkpoints kept in {m['checkpoints']} (pretrain.keep_checkpoints)")
    phases = m.get("phases_s") or {}
    if phases:
        print("  outside the loop: " + "  ".join(f"{k[:-2]} {v:.1f} s" for k, v in phases.items()))
    stream = m.get("stream_mixture") or {}
    for lang, t in sorted((m.get("target_mixture") or {}).items()):
        share = stream.get(lang, {}).get("token_share", float("nan"))
        print(f"{_lang_line(m, lang, fraction, t['rows'])}  target p {t['target_p']:.3f}  "
              f"sampled rows p {t['realised_p']:.3f}  stream token share {share:.3f}")


def _lang_line(m: dict, lang: str, fraction: float, rows) -> str:
    """A language's held-out perplexity (or why it has none) and its training rows."""
    return f"  {lang}: held-out perplexity {_ppl((m.get('ppl') or {}).get(lang), fraction)}  rows {rows}"


def _ppl(ppl: float | None, fraction: float) -> str:
    """A language's held-out perplexity, or why it has none (it showed "nan" without a reason)."""
    if ppl is not None:
        return f"{ppl:.2f}"
    from lrl.train.pretrain_preflight import no_heldout_reason

    return f"- (no held-out rows: {no_heldout_reason(fraction)})"


def _aux_split(m: dict) -> str | None:
    """With the auxiliary task: the MLM and tagging steps' own speeds and the aux steps' share of
    the loop (tokens/s and MFU above count both kinds of step), from the manifest ``m``; None
    without the task (or for a folder written before these fields)."""
    if not m.get("aux_tokens_per_s"):
        return None
    return (f"  of which MLM steps {m['mlm_tokens_per_s']:.0f} tokens/s, auxiliary tagging steps "
            f"{m['aux_tokens_per_s']:.0f} tokens/s in {m['aux_time_share']:.0%} of the loop time")
