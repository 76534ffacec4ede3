"""``lrl tokenizer CONFIG [overrides]``: the tokenizer stage.

Reads unlabelled text per language (the generate stage's ``text/`` Parquet when that output is
upstream and has text, else ``data.text``), trains a tokenizer or extends ``tokenizer.base``, and
writes one stage folder: the Hugging Face tokenizer files (``AutoTokenizer.from_pretrained`` on the
folder), ``stats.json`` (per language, before and after: unknown-token rate and pieces per word on
held-out lines) and, when extending, ``added_tokens.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from lrl.cli import add_job_arguments, load_job_args, reused_line
from lrl.data.files import InputError, filesystem, fingerprint, resolve
from lrl.data.finished import read_json
from lrl.data.local_or_hub import missing_folder, no_local_folder
from lrl.data.output import MANIFEST, StageOutput, input_print
from lrl.data.remote import local_output
from lrl.model.accents import combining_marks, marks_report, report_lines
from lrl.model.text_split import tail_cap_changed, tokenizer_text
from lrl.pipeline.stage import StageContext

STAGE = "tokenizer"


def _source(ctx: StageContext) -> tuple[str, object]:
    """Where the text comes from, and its fingerprint (for the output folder's hash)."""
    gen = ctx.upstream.get("generate")
    if gen:
        fs, inner = filesystem(f"{gen.rstrip('/')}/text")
        if fs.get_file_info(inner).type.name != "NotFound":
            return "generate", input_print(gen)  # its name, not where its root is
    if not ctx.cfg.data.text:
        raise InputError("the tokenizer stage needs text: set data.text (or run generate with text output)")
    return "data.text", [fingerprint(resolve(s.path, ctx.cfg.data.root)) for s in ctx.cfg.data.text]


#: Bumped when the train / held-out split changes, so that outputs made by the old split rebuild
#: (the split shapes both the tokenizer and its statistics). 3: pretraining's held-out slice is
#: left out of training (``lrl.model.text_split``), so the hash names ``pretrain.heldout_fraction``.
SPLIT_VERSION = 3

#: Bumped when ``extend`` makes other tokens from the same inputs, so that finished extended
#: tokenizers rebuild (2: hamza letters kept by ``extend._keep_hamza``, pieces' rows initialised
#: from the base's normalized reading; 3: pieces for the hamza letters the learned ones lack,
#: ``extend._hamza_pieces``). Only extend outputs carry it: trained tokenizers keep their hash.
EXTEND_VERSION = 3

#: Bumped when ``tokenizer.max_new_tokens`` keeps other pieces (1: characters first, the most
#: frequent first, ``lrl.model.piece_rank``); only extend outputs with the option set carry it.
NEW_TOKENS_ORDER = 1

#: Named by extend outputs with ``max_new_tokens`` whose text has a word over WordPiece's 100
#: characters (1: the learner's [UNK] no longer counts as the letters "[", "U", "N", "K", "]").
LONG_WORDS = 1

#: Bumped when Unigram tokenizers number their pieces otherwise (1: a fixed order instead of the
#: trainer's, which differed between runs); WordPiece hashes do not carry it.
UNIGRAM_ORDER = 1

#: Bumped when the same text gives trained or extended tokenizers another alphabet, so that
#: finished tokenizer outputs of either mode rebuild (1: punctuation of the text's scripts that the
#: text lacks, ``lrl.model.alphabet``).
ALPHABET_VERSION = 1


def stage_output(ctx: StageContext, remember: bool = False, read: dict | None = None) -> StageOutput:
    """The stage's folder for ``ctx``. ``remember``: keep what the text holds in the cache under
    the output root (``lrl.model.text_keys_cache``); off where nothing is written (dry runs, plans).
    ``read``: where the text's table goes when naming read it (``_scan_text``), for training."""
    t = ctx.cfg.tokenizer
    check_base(t.base)  # before the text is read; dry runs and lrl pretrain name it as well
    kind, inputs = _source(ctx)
    fingerprints = {"source": kind, "inputs": inputs, "base": _base_fingerprint(t.base),
                    "text": [s.model_dump(mode="json") for s in ctx.cfg.data.text] if kind == "data.text" else None,
                    "split": SPLIT_VERSION, "heldout": ctx.cfg.pretrain.heldout_fraction,
                    "alphabet": ALPHABET_VERSION}
    if t.mode == "extend":
        fingerprints["extend"] = EXTEND_VERSION
        if t.max_new_tokens is not None:  # characters first, the most frequent first (lrl.model.piece_rank)
            fingerprints["new_tokens_order"] = NEW_TOKENS_ORDER
    if tail_cap_changed(t.max_lines_per_lang, t.eval_lines):  # the tail split trained on more lines than
        fingerprints["tail_cap"] = 1  # max_lines_per_lang (lrl.model.text_split.tail_split); others keep their hash
    fingerprints |= _text_keys(ctx, kind, inputs, remember, read)
    if t.type == "unigram":  # pieces in a fixed id order (lrl.model.unigram_order), trained again
        fingerprints["unigram_order"] = UNIGRAM_ORDER
    if not t.nfkc:  # then data.unicode decides what the tokenizer sees (with NFKC, NFC changes nothing)
        fingerprints["unicode"] = ctx.cfg.data.unicode
    # keep_accents and keep_letters in the hash only when set: the outputs made before the options
    # keep their names
    unset = {k for k in ("keep_accents", "keep_letters") if not getattr(t, k)}
    if _local_base(t.base):  # its files' content ("base" above) names it, not where it lies: a base
        unset.add("base")  # moved or copied renamed the output; hub ids and no base keep their hash
    shaping = t.model_dump(mode="json", exclude=unset or None)
    return StageOutput(ctx.cfg.output.root, STAGE, shaping, fingerprints)


def _text_keys(ctx: StageContext, kind: str, inputs: object, remember: bool = False,
               read: dict | None = None) -> dict[str, int]:
    """Keys for what the text (training and held-out lines alike, a superset) holds, so that only
    the outputs it changes get new names: ``format_chars`` for an invisible format character or a
    joiner, which trained tokenizers now remove or add to their alphabet and the statistics read
    otherwise (``lrl.model.invisible``); ``long_words`` for a run of more than 100 non-space
    characters where ``max_new_tokens`` ranks WordPiece pieces (a word the learner reads as [UNK],
    whose letters ``lrl.model.piece_rank`` counted as used). Reading the text for them is a full
    download from an object store, so the result is cached by what decides it
    (``lrl.model.text_keys_cache``): ``inputs``, the text's fingerprints or generate's print."""
    from lrl.model import invisible
    from lrl.model.text_keys_cache import cached_keys

    t = ctx.cfg.tokenizer
    gen = ctx.upstream["generate"] if kind == "generate" else None
    long_words = t.mode == "extend" and t.type == "wordpiece" and t.max_new_tokens is not None
    if gen is not None:  # its print is its folder's name (a moved root keeps it); its manifest
        where: object = _manifest_print(gen)  # tells one build from another
    else:  # a remote object's fingerprint is its size and mtime: its path names it too
        where = [resolve(s.path, ctx.cfg.data.root) for s in ctx.cfg.data.text]
    parts = {"source": kind, "inputs": inputs, "where": where, "unicode": ctx.cfg.data.unicode,
             "text": [s.model_dump(mode="json") for s in ctx.cfg.data.text] if gen is None else None,
             # the keys' values and what they look for, read now (tests bump them)
             "format": [invisible.FORMAT_CHARS, invisible.INVISIBLE, invisible.JOINERS],
             "long_words": [LONG_WORDS, LONG_WORD] if long_words else None}
    return cached_keys(ctx.cfg.output.root, parts, lambda: _scan_text(ctx, gen, long_words, read), remember)


#: A word over WordPiece's max_input_chars_per_word (100), which its learner reads as [UNK].
LONG_WORD = r"\S{101}"


def _scan_text(ctx: StageContext, gen: str | None, long_words: bool, read: dict | None = None) -> dict[str, int]:
    import pyarrow.compute as pc

    from lrl.model.invisible import format_key
    from lrl.train.pretrain_data import load_text

    table = load_text(ctx.cfg, gen)[0]
    if read is not None:  # a first run trains on these rows: read (downloaded) once, not again
        read["table"] = table
    text = table.column("text")
    keys = format_key(text)
    if long_words and len(text) and pc.any(pc.match_substring_regex(text, LONG_WORD)).as_py():
        keys["long_words"] = LONG_WORDS
    return keys


def _manifest_print(folder: str) -> str | None:
    """The fingerprint of a stage folder's manifest (one small file), None when it has none."""
    try:
        return fingerprint(f"{folder.rstrip('/')}/{MANIFEST}")
    except InputError:
        return None


def check_base(base: str | None) -> None:
    """An ``InputError`` for a ``tokenizer.base`` that looks like a local path and is no folder
    (``lrl.data.local_or_hub``): transformers took ``models/x`` for a hub id and failed after a
    minute of retries with "couldn't connect to 'https://huggingface.co'", naming no folder."""
    if (problem := missing_folder("tokenizer.base", base)) is not None:
        raise InputError(problem)


def _local_base(base: str | None) -> bool:
    """``tokenizer.base`` names a local folder (``~/x`` the one it names), not a hub id."""
    return bool(base) and os.path.isdir(os.path.expanduser(base))  # type: ignore[arg-type]


#: A base folder's files that are a model's, not its tokenizer's: its weights and training state
#: (by their endings) and the records of a model or a run. Every other top-level file counts, as
#: ``AutoTokenizer`` reads whatever its class names (DeBERTa-v3's ``spm.model``, Marian's
#: ``source.spm``): a fixed list left such a vocabulary out, and since the base's path no longer
#: names the output, mDeBERTa-v3 and DeBERTa-v3 bases (the same tokenizer_config.json) shared one.
WEIGHT_ENDINGS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf",
                  ".npy", ".npz", ".index.json")
NOT_TOKENIZER = frozenset({"config.json", "generation_config.json", "trainer_state.json", "README.md"})


def _base_fingerprint(base: str | None) -> object:
    """Hashes of a local base tokenizer's files (not its weights); a hub id stands for itself.
    ``~/x`` is the folder it names, as ``check_base`` and the loader (``run_tokenizer``) read it.
    Of ``config.json`` only ``model_type`` and ``tokenizer_class``, which choose the tokenizer's
    class (transformers reads them beside tokenizer_config.json's)."""
    if not _local_base(base):
        return base
    assert base is not None
    base = os.path.expanduser(base)
    out: dict[str, object] = {}
    for n in sorted(os.listdir(base)):
        path = os.path.join(base, n)
        if os.path.isfile(path) and not n.startswith(".") and n not in NOT_TOKENIZER \
                and not n.endswith(WEIGHT_ENDINGS):
            out[n] = fingerprint(path)
    try:
        config = read_json(os.path.join(base, "config.json"))
    except (OSError, ValueError):
        config = None
    if isinstance(config, dict) and (chose := {k: config[k] for k in ("model_type", "tokenizer_class") if k in config}):
        out["config.json"] = chose
    return out


def run_tokenizer(ctx: StageContext, warn: bool = True) -> str:
    """Train or extend a tokenizer; returns the finished stage folder (reused when already done).
    ``warn``: print the warnings of ``stats.json`` as it is written (off where ``summary`` follows)."""
    from lrl.model.extend import extend_tokenizer, load_tokenizer
    from lrl.model.tokenizer import (
        char_stats,
        normalizer_effect,
        save_tokenizer,
        tokenizer_stats,
        train_tokenizer,
    )

    read: dict = {}  # the text's table where naming read it (no cached keys): a first run
    out = stage_output(ctx, remember=True, read=read)
    if out.done:
        return out.path
    t = ctx.cfg.tokenizer
    kind, _ = _source(ctx)
    text = tokenizer_text(ctx.cfg, ctx.upstream["generate"] if kind == "generate" else None, read.pop("table", None))
    if not any(text.train.values()):
        raise InputError(f"the tokenizer stage found no text lines in {kind}")
    train, held, note = text.train, text.held, text.note
    try:  # a base that looks like a path and is no folder: stage_output said so (check_base)
        # ~/x: a folder to check_base (missing_folder expands it), so to the loader too; transformers
        # took "~/x" for a hub id ("Repo id must use alphanumeric chars"), said "not a tokenizer folder"
        base = load_tokenizer(os.path.expanduser(t.base)) if t.base else None
    except OSError as exc:  # transformers' hub wording, for a value taken for a hub id
        assert t.base is not None
        said = " ".join(str(exc).split())  # one line: transformers' own spans several
        if os.path.isdir(os.path.expanduser(t.base)):
            raise InputError(f"tokenizer.base={t.base}: cannot load a tokenizer (not a tokenizer folder): "
                             f"{said}") from exc
        raise InputError(f"tokenizer.base={t.base}: {no_local_folder('tokenizer.base', t.base)}, and as a "
                         f"Hugging Face hub id it cannot be loaded (not on the hub, or not reachable offline): "
                         f"{said}") from exc
    added: list[str] = []
    if t.mode == "extend":
        assert base is not None
        tok, added = extend_tokenizer(base, train, t)
    else:
        tok = train_tokenizer(train, t)
    stats = {"before": t.base if base is not None else "character-level (each non-space character one piece)",
             "after": f"{t.mode}: {t.type}", "words": "whitespace-separated", "langs": {}}
    for lang, lines in held.items():
        before = tokenizer_stats(base, lines) if base is not None else char_stats(lines)
        stats["langs"][lang] = {"eval_lines": len(lines), "train_lines": len(train[lang]),
                                # pretraining's held-out rows, none trained on (lrl.model.text_split)
                                "pretrain_heldout_lines": text.pretrain_heldout.get(lang, 0),
                                "before": before, "after": tokenizer_stats(tok, lines),
                                # what the normalizer erases (an extended base keeps its own)
                                "normalizer": normalizer_effect(tok, lines)}
        if lang in note:
            stats["langs"][lang]["note"] = note[lang]
    if t.mode == "train":  # fewer entries than asked, or none longer than a character (lrl.model.vocab_size)
        from lrl.model.vocab_size import vocab_report

        stats["vocabulary"] = vocab_report(tok, t.vocab_size, t.min_frequency, t.type,
                                           sum(len(v) for v in train.values()))
        if warn:
            for line in stats["vocabulary"]["warnings"]:
                print(f"warning: {line}", flush=True)
    if t.keep_accents:  # which marks were kept and stripped: a rare native letter (Igbo ṅ) shows;
        # how often each keep_letters entry occurs, and a warning for one the text never writes
        stats["accents"] = marks_report(train, t.nfkc, tok.backend_tokenizer.normalizer.normalize_str,
                                        keep_letters=t.keep_letters)
        if warn:  # lrl run prints no summary; lrl tokenizer's has them
            for line in stats["accents"].get("warnings", []):
                print(f"warning: {line}", flush=True)
    try:
        with local_output(out.tmp) as local:  # the tokenizers library writes local files only
            folder = Path(local)
            save_tokenizer(tok, folder)  # transformers 4 reads it too
            (folder / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False))
            if added:
                (folder / "added_tokens.txt").write_text("\n".join(added) + "\n", encoding="utf-8")
        return out.commit({"mode": t.mode, "type": t.type, "base": t.base, "source": kind,
                           "langs": sorted(train), "vocab_size": len(tok), "added": len(added),
                           **({"accents": stats["accents"]} if "accents" in stats else {}),
                           "stats": {k: {"before": v["before"]["unk_rate"], "after": v["after"]["unk_rate"]}
                                     for k, v in stats["langs"].items()}})
    except BaseException:
        out.abort()
        raise


def summary(path: str, stats: dict) -> str:
    lines = [f"tokenizer: {path}", f"  before = {stats['before']}"]
    held = {k: v["eval_lines"] for k, v in stats["langs"].items() if v.get("pretrain_heldout_lines") and not v.get("note")}
    if held:  # which text the numbers are on: the rows pretraining scores its perplexity on
        lines.append(f"  scored on {', '.join(f'{n} {k}' for k, n in held.items())} lines that pretraining holds out "
                     "(pretrain.heldout_fraction); neither trains on them")
    for lang, s in stats["langs"].items():
        b, a = s["before"], s["after"]
        # Words with an unknown piece too, and a word the base read as [UNK] is one piece: an extended
        # MiniLM's "pieces/word 2.93 -> 2.99" read as a loss where 62% of the words had been unknown.
        words = (f" (words with one: {b['unk_word_rate']:.2%} -> {a['unk_word_rate']:.2%})"
                 if "unk_word_rate" in b and "unk_word_rate" in a else "")
        lines.append(f"  {lang}: unk {b['unk_rate']:.2%} -> {a['unk_rate']:.2%}{words}, pieces/word "
                     f"{b['pieces_per_word']:.2f} -> {a['pieces_per_word']:.2f}"
                     + (" (an [UNK] counts as one piece)" if b.get("unk_word_rate", 0) >= 0.01 else "")
                     + (f" ({s['note']})" if s.get("note") else ""))
        norm = s.get("normalizer") or {}
        if norm.get("words_changed_beyond_case", 0) > 0.01:
            lines.append(f"    the normalizer changes {norm['words_changed_beyond_case']:.1%} of {lang} words beyond "
                         f"case (removes {' '.join(norm['chars_removed'])}; {norm['forms_merged']} word forms merged)")
            # accented letters, where keep_accents is off (on, the accents lines below say more)
            if any(combining_marks(c) for c in norm["chars_removed"]) and not stats.get("accents"):
                lines.append("    tokenizer.keep_accents=true keeps the accents the text writes often (tone marks, "
                             "dots below) when extending a base that strips them")
        if norm.get("words_not_nfkc", 0) > 0.01:
            lines.append(f"    {norm['words_not_nfkc']:.1%} of {lang} words stay in compatibility forms (not NFKC), "
                         "apart from the same words in ordinary letters")
    if stats.get("accents"):
        lines += report_lines(stats["accents"])
    lines += [f"  warning: {w}" for w in (stats.get("vocabulary") or {}).get("warnings", [])]
    return "\n".join(lines)


def tokenizer_first(ctx: StageContext) -> str:
    """The tokenizer a pretraining without ``pretrain.tokenizer_path`` uses outside ``lrl run``: the
    tokenizer stage's folder for this config (``tokenizer.*``), trained first or reused, and said
    with its summary. A standalone ``lrl pretrain`` trained it without a word, while its dry run
    pointed at ``lrl run``'s tokenizer stage."""
    started = time.time()
    # Before it trains (minutes on a large corpus). Not "pretrain: ...": that line is the stage's folder.
    print("pretrain.tokenizer_path is unset, so the tokenizer stage's folder for this config is used "
          "(tokenizer.* settings):", flush=True)
    path = run_tokenizer(ctx, warn=False)
    print(summary(path, read_json(f"{path}/stats.json")))
    if reused := reused_line(path, started):
        print(reused)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_job_args(args)
    started = time.time()
    path = run_tokenizer(StageContext(cfg), warn=False)
    stats = read_json(f"{path}/stats.json")
    print(summary(path, stats))
    if reused := reused_line(path, started):
        print(reused)
    return 0
