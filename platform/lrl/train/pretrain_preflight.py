"""Checks of a pretraining run in the driver: settings that cannot work stop it before Ray starts,
settings that do nothing and a training stream that leans on a few rows are said once.

``preflight`` runs in ``run_pretrain`` before Ray is started (a config error there took 18 s of
Ray start-up and Ray Train first); ``stream_notes`` in ``fit``, once the held-out split and the
resampled stream exist.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from lrl.config import ConfigError
from lrl.data.sampling import Mixture
from lrl.train.pretrain_config import DeepSpeedSection, PretrainConfig

log = logging.getLogger(__name__)
#: Copies of each of a language's rows per epoch above which the stream is warned about: temperature
#: sampling (``pretrain.alpha``) raises a small language's share by repeating its rows, and a
#: language of 2 rows next to 942 was trained ~75 times per row (40% of the trained tokens), with
#: nothing said. Documented at ``pretrain.alpha``.
MAX_REPEAT = 10


def preflight(p: PretrainConfig, langs: list[str], tok_dir: str) -> None:
    """Errors and warnings about ``p`` that need no Ray: ``langs`` are the pretraining text's
    languages, ``tok_dir`` the tokenizer folder."""
    if p.aux.conllu and p.aux.lang not in langs:
        _check_aux_lang(p.aux.lang, langs, tok_dir)
    if p.tokenizer_path:  # the tokenizer stage's own folders have a tag for every text language
        _check_text_tags(langs, tok_dir)
    if p.engine == "torch":
        unused = _unused_deepspeed(p)
        if unused:
            say(f"warning: {', '.join(unused)} do(es) nothing with pretrain.engine=torch (DeepSpeed settings apply "
                "to engine deepspeed only) and is left out of the output's hash")
    else:
        from lrl.train.pretrain_engine import deepspeed_config

        # A bad ds_config (unreadable, contradicting pretrain's settings) stops the stage here,
        # not a minute later inside every Ray Train worker and again in each retry. The device is
        # known only once Ray runs (fit checks fp16 again then): until then auto may be a GPU.
        # Only this call warns about what the file overrides: said once, not per call.
        ds = deepspeed_config(p, p.num_workers, p.use_gpu is not False, warn=True)
        if p.deepspeed.config_file:  # what DeepSpeed refuses of the file, also before Ray
            from lrl.train.pretrain_ds_file import check_with_deepspeed

            check_with_deepspeed(ds, p.deepspeed.config_file)


def _check_aux_lang(lang: str, langs: list[str], tok_dir: str) -> None:
    """The tagging task prepends ``lang``'s tag token; a tokenizer trained on the text has tags only
    for the text's languages, and the missing tag was found after Ray had started. A tokenizer
    that has the tag anyway (``pretrain.tokenizer_path``, an extended one) is fine."""
    from transformers import AutoTokenizer

    from lrl.data.remote import local_folder
    from lrl.model.tokenizer import lang_tag

    tok = AutoTokenizer.from_pretrained(local_folder(tok_dir))
    tid = tok.convert_tokens_to_ids(lang_tag(lang))
    if tid is None or tid == tok.unk_token_id:
        raise ConfigError(f"pretrain.aux.lang={lang!r} is not a language of the pretraining text "
                          f"({', '.join(langs)}), and the tokenizer has no {lang_tag(lang)} tag for it: set "
                          "pretrain.aux.lang to the CoNLL-U files' language and include text in it")


def _check_text_tags(langs: list[str], tok_dir: str) -> None:
    """Every sequence starts with its language's tag token. A ``pretrain.tokenizer_path`` without
    one (MiniLM's own folder) stopped the run after Ray had started, with an error that named
    neither the folder nor the setting and said to train a tokenizer."""
    from transformers import AutoTokenizer

    from lrl.data.remote import local_folder
    from lrl.model.tokenizer import lang_tag

    tok = AutoTokenizer.from_pretrained(local_folder(tok_dir))
    missing = [lang_tag(x) for x in langs if tok.convert_tokens_to_ids(lang_tag(x)) in (None, tok.unk_token_id)]
    if missing:
        raise ConfigError(f"pretrain.tokenizer_path={tok_dir}: no language tag token {', '.join(missing)} for the "
                          "pretraining text: leave it unset (the tokenizer stage adds one tag per language; "
                          "tokenizer.mode=extend with tokenizer.base keeps a base's vocabulary) or give such a folder")


def _unused_deepspeed(p: PretrainConfig) -> list[str]:
    default = DeepSpeedSection()
    return [f"pretrain.deepspeed.{k}={v!r}" for k, v in p.deepspeed.model_dump().items()
            if v != getattr(default, k)]


def hash_view(p: PretrainConfig) -> PretrainConfig:
    """``p`` as the output's hash sees it.

    - Under engine torch the DeepSpeed section does nothing, so it hashes as its defaults (two
      folders of bit-identical models were made by zero_stage 2 and 3).
    - The paths of ``tokenizer_path``, ``model_path`` and ``deepspeed.config_file`` hash as unset:
      the stage's inputs name them by content (or a stage folder by its name, ``input_print``).
      With its path in the hash, the tokenizer folder a standalone run had trained, given as
      ``pretrain.tokenizer_path``, or a byte-identical copy of it, pretrained again (bit-identical
      models in three folders).

    The defaults (engine deepspeed, no paths) hash as before."""
    paths = {"tokenizer_path": None, "model_path": None}
    ds = DeepSpeedSection() if p.engine == "torch" else p.deepspeed.model_copy(update={"config_file": None})
    return p.model_copy(update={**paths, "deepspeed": ds})


def ds_file_inputs(path: str) -> dict[str, object]:
    """The pretrain hash's inputs of a ds_config file: its content, and ``ds_bf16_alias`` when it
    names its bf16 section ``bfloat16``, which runs before ``normal_sections`` trained without (only
    then: other outputs keep their names)."""
    from lrl.data.files import fingerprint
    from lrl.train.pretrain_ds_file import uses_bf16_alias

    return {"ds_config": fingerprint(path), **({"ds_bf16_alias": 2} if uses_bf16_alias(path) else {})}


def stream_notes(train: pa.Table, heldout: pa.Table, mixture: Mixture, heldout_fraction: float,
                 sample_rows: int | None = None, alpha: float = 0.3) -> list[str]:
    """Warnings about the held-out slice and the resampled stream: a language without held-out rows
    (its perplexity was shown as nan without a reason) and one whose rows the stream repeats more
    than ``MAX_REPEAT`` times. With ``pretrain.sample_rows`` set the stream's length repeats rows
    too: one language at alpha 1 was told to raise alpha or be left out."""
    notes = []
    held = set(heldout.column("lang").to_pylist()) if heldout.num_rows else set()
    missing = sorted(set(mixture.rows) - held)
    if heldout_fraction > 0 and missing:
        notes.append(f"warning: no held-out rows for {', '.join(missing)} ({no_heldout_reason(heldout_fraction)}): "
                     "no held-out perplexity for it")
    repeated = {k: mixture.sampled[k] / n for k, n in mixture.rows.items() if n and mixture.sampled[k] / n > MAX_REPEAT}
    if repeated:
        total = max(1, sum(mixture.sampled.values()))
        said = ", ".join(f"{k} ({mixture.rows[k]} rows, each ~{f:.0f} times, {mixture.sampled[k] / total:.0%} of "
                         "the stream's rows)" for k, f in sorted(repeated.items()))
        if sample_rows is None:
            notes.append(f"warning: temperature sampling repeats the rows of {said} more than {MAX_REPEAT} times per "
                         "epoch: add text in that language, raise pretrain.alpha (1 keeps the natural mixture) "
                         "or leave the language out")
        else:
            notes.append(f"warning: the stream of pretrain.sample_rows={sample_rows} rows repeats the rows of {said} "
                         f"more than {MAX_REPEAT} times per epoch: lower pretrain.sample_rows (unset: every row at "
                         "least once) or add text in that language"
                         + (", or raise pretrain.alpha" if alpha < 1 and len(mixture.rows) > 1 else ""))
    return notes


def no_heldout_reason(fraction: float) -> str:
    """Why a language has no held-out rows, for the warning and ``lrl pretrain``'s summary."""
    if fraction <= 0:
        return "pretrain.heldout_fraction=0"
    # (held-out rows that repeat a training row are dropped too: rare enough to go unsaid here)
    return "too few rows to hold out a document: a language keeps at least one for training"


def say(note: str) -> None:
    """A warning in the log: on the console (stderr) through logging's last-resort handler where
    no handler is set up, as for ``lrl pretrain``; printing it as well showed it twice there."""
    log.warning("%s", note)


__all__ = ["preflight", "hash_view", "stream_notes", "no_heldout_reason", "say", "MAX_REPEAT"]
