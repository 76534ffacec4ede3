"""Train/dev tables per language and the encoder folder, as the tune stage resolves them.

Training rows come from the generate stage's output (``finetune.data`` or the pipeline's upstream
``generate``) when there is one, else from the ``data.ner`` sources of every split but the held-out
ones (``HELDOUT``); dev rows
always come from the ``data.ner`` sources with split=dev (generated rows never score a model).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lrl.config import ConfigError
from lrl.data.config import HELDOUT
from lrl.data.files import filesystem, read_json
from lrl.data.readers import read_ner
from lrl.data.remote import is_file, is_remote, upload_folder
from lrl.data.schema import NER_SCHEMA, table_scheme, with_scheme
from lrl.job import encoder_setting
from lrl.model.special_text import TYPED_SPECIALS, holds_specials
from lrl.pipeline.stage import StageContext
from lrl.train.finetune_config import few_shot_outside


def _read_generated(path: str, setting: str = "finetune.data") -> pa.Table:
    """The ``data/`` Parquet folder of a generate output (hive-partitioned by lang); a folder
    without one (another stage's output, the runs folder) is a ``ConfigError`` naming ``setting``,
    not pyarrow's ``FileNotFoundError: .../data`` traceback."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    fs, inner = filesystem(path.rstrip("/") + "/data")
    if fs.get_file_info(inner).type != pafs.FileType.Directory:
        raise ConfigError(f"{setting}={path}: no generate output there (it has no data/ folder of generated rows); "
                          "name a generate-<hash> folder written by lrl generate or lrl run")
    ds = pads.dataset(inner, filesystem=fs, format="parquet", partitioning="hive")
    table = ds.to_table()
    cols = {}
    for f in NER_SCHEMA:
        col = table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        cols[f.name] = col.cast(f.type) if not pa.types.is_dictionary(col.type) else col.dictionary_decode().cast(f.type)
    return pa.table(cols, schema=NER_SCHEMA)


def language_splits(ctx: StageContext, languages: list[str] | None = None, stage: str = "tune",
                    said: list[str] | None = None) -> dict[str, tuple[pa.Table, pa.Table]]:
    """``{lang: (train, dev)}`` for every language with both (or those asked, which must have both).

    ``stage`` (``tune`` or ``finetune``) is the caller: errors name the setting the user wrote.
    The warning about quarantined sentences goes to ``said`` when given (the stages print it only
    when they train: a reused output, or ``lrl run`` with both stages, repeated it), else to stderr."""
    cfg = ctx.cfg
    root = cfg.data.root
    parts: dict[str, list[pa.Table]] = {"train": [], "dev": []}
    gen = cfg.finetune.data or ctx.upstream.get("generate")
    quarantined: list[str] = []
    for src in cfg.data.ner:
        # Every split but the held-out ones trains, as the generate stage reads them: a source of
        # split ``train2`` was generated from under ``lrl run`` and silently unused here alone.
        split = "dev" if src.split == "dev" else None if src.split in HELDOUT else "train"
        if split is None or (split == "train" and gen):  # generated rows replace the sources
            continue
        res = read_ner(src, root, cfg.data.bio_policy, cfg.data.labels)
        parts[split].append(res.table)
        quarantined += [f"{src.lang} {src.split} {n} ({reason})" for reason, n in sorted(res.reject_reasons.items())]
    if quarantined:
        # Left out without a word: data.labels=[PER, LOC] dropped every ug sentence with an ORG
        # (165 of 1603 train, and dev ones too), and the scores read as the whole split's.
        line = (f"warning: {stage}: sentences of data.ner quarantined when read are left out of training and of "
                f"the dev scores: {', '.join(quarantined)}")
        if said is not None:
            said.append(line)
        else:
            print(line, file=sys.stderr)
    if gen:
        parts["train"] = [_read_generated(gen, "finetune.data" if cfg.finetune.data else "the generate stage's output")]
    if not parts["train"] or not parts["dev"]:
        raise ConfigError(f"{stage} needs training data (data.ner with split: train, or a generate output) "
                          "and dev data (data.ner with split: dev)")
    train, dev = pa.concat_tables(parts["train"]), pa.concat_tables(parts["dev"])
    have = sorted(set(train.column("lang").to_pylist()) & set(dev.column("lang").to_pylist()))
    wanted = languages or cfg.finetune.languages or have
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        field = f"{stage}.languages" if languages else "finetune.languages"
        raise ConfigError(f"{field} {missing}: no train and dev rows for them (have {have})")
    # Against the languages finetune trains (tune may search fewer of them); a set finetune.languages
    # was checked at load.
    if problem := few_shot_outside(cfg.finetune.few_shot, cfg.finetune.languages or have):
        raise ConfigError(f"{problem} (those with train and dev rows)")
    # Marked by the scheme of the language's sources (generated rows come without one), so that
    # fine-tuning gives a POS language the labels B-X per tag only (``label_list``).
    scheme = {lang: "tokens" if all(s.scheme == "tokens" for s in cfg.data.ner if s.lang == lang) else "iob2"
              for lang in wanted}
    return {lang: (with_scheme(train.filter(pc.equal(train.column("lang"), lang)), scheme[lang]),
                   with_scheme(dev.filter(pc.equal(dev.column("lang"), lang)), scheme[lang]))
            for lang in wanted}


def repeated_dev(splits: dict[str, tuple[pa.Table, pa.Table]], stage: str, ft=None,
                 seeds: Sequence[int] = ()) -> tuple[dict[str, int], dict[str, dict[int, int]]]:
    """Per language, the dev sentences that are also training sentences (``dev_in_train``), each
    language with some said in a warning: WikiANN repeats sentences across its splits (ug 51 of
    200 dev sentences, wo 36 of 120, ig 30 of 100), and part of such a dev F1 measures memory.

    Under ``ft.few_shot`` (a mapping: in the languages it names) or ``ft.aug_ratio`` (a
    ``FinetuneConfig``) each seed trains on its own part of the rows, so the count is of that part,
    per seed of ``seeds``: a 50-shot wo run trained on 5-8 of the 36 (an audit found the warning
    naming all 36). Returns (the most any seed's training set holds, or the full set's count;
    {lang: {seed: count}} when the parts differ)."""
    from lrl.train.finetune_data import dev_in_train, prepare_train

    def shaped(lang: str) -> bool:  # a few_shot mapping cuts only the languages it names
        cut = ft.few_shot is not None and (not isinstance(ft.few_shot, dict) or lang in ft.few_shot)
        return (cut or ft.aug_ratio is not None) and bool(seeds)

    repeated, by_seed = {}, {}
    for lang, (train, dev) in splits.items():
        full = dev_in_train(train, dev)
        if ft is not None and shaped(lang) and full:
            by_seed[lang] = {s: dev_in_train(prepare_train(train, ft.few_shot, ft.aug_ratio, s), dev)
                             for s in sorted(set(seeds))}
        repeated[lang] = max(by_seed[lang].values()) if lang in by_seed else full
        if not repeated[lang]:
            continue
        counts = sorted(set(by_seed.get(lang, {}).values()))
        n = (f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]} (by seed)") if counts else f"{full}"
        what = (f"among the rows the runs train on (few_shot / aug_ratio choose them per seed; {full} in the "
                "full training set)") if counts else "training sentences"
        # Generated rows count too: on the quickstart's template sample, swaps made 2-3 dev sentences.
        print(f"warning: {stage} {lang}: {n} of {dev.num_rows} dev sentences are also {what} (the same tokens, "
              "as read or as generated): part of its dev F1 measures memory, not generalisation", file=sys.stderr)
    return repeated, by_seed


def dev_only_types(splits: dict[str, tuple[pa.Table, pa.Table]], stage: str, joint: bool) -> dict[str, dict[str, int]]:
    """Per language, the entity types (with their dev spans) that its dev set has and no sentence
    its model trains on has, each said in a warning: the model gets labels nothing teaches, and
    those spans count as misses in its dev F1 (``lrl evaluate`` says so; fine-tuning said nothing).
    A joint model trains on every language's rows, so there a type counts as taught when any
    language's training set has it."""
    def types(table: pa.Table) -> dict[str, int]:
        found: dict[str, int] = {}
        for tags in table.column("tags").to_pylist():
            for tag in tags:
                if tag.startswith("B-"):  # one per span (BIO is checked when read)
                    found[tag[2:]] = found.get(tag[2:], 0) + 1
        return found

    taught = {lang: set(types(train)) for lang, (train, _) in splits.items()}
    everywhere = set().union(*taught.values()) if taught else set()
    missing = {}
    for lang, (_, dev) in splits.items():
        untaught = {t: n for t, n in sorted(types(dev).items()) if t not in (everywhere if joint else taught[lang])}
        if untaught:
            missing[lang] = untaught
            spans = ", ".join(f"{t} ({n} dev span{'s' * (n != 1)})" for t, n in untaught.items())
            print(f"warning: {stage} {lang}: {spans} never occur in the sentences its model trains on: the model "
                  "cannot learn them, and they count as misses in its dev F1 (relabel them in the dev file, or "
                  "add training sentences that have them)", file=sys.stderr)
    return missing


def dev_checks(splits: dict[str, tuple[pa.Table, pa.Table]], stage: str, ft, seeds: Sequence[int],
               joint: bool) -> dict[str, object]:
    """``repeated_dev`` and ``dev_only_types`` (their warnings said), as the finetune and tune
    manifests record them: the per-seed counts and the untaught types only when there are some."""
    repeated, by_seed = repeated_dev(splits, stage, ft, seeds)
    untaught = dev_only_types(splits, stage, joint)
    return {"dev_sentences_in_train": repeated, **({"dev_sentences_in_train_by_seed": by_seed} if by_seed else {}),
            **({"dev_types_not_in_train": untaught} if untaught else {})}


def warn_left_out(cfg, stage: str) -> None:
    """``lrl finetune`` and ``lrl tune`` run alone: warn, as ``lrl run`` does before its first stage
    (``lrl.pipeline.preflight.check_languages``), when ``data.ner`` has training sentences of a
    language but no dev ones. ``language_splits`` keeps only languages with both, so such a
    language was left out of training, evaluation and the report without a word."""
    from lrl.config import config_warning
    from lrl.pipeline.preflight import PreflightError, check_languages

    try:
        lines = check_languages(cfg, [stage])
    except PreflightError:
        # A language asked for without train or dev rows, or no dev source at all: the stage
        # stops on it at once with its own error (nothing runs before it here).
        return
    for line in lines:
        config_warning(line)


def fingerprint(splits: dict[str, tuple[pa.Table, pa.Table]], specials: Collection[str] = ()) -> dict[str, str]:
    """A content hash per language (ids, tokens, tags of train and dev), so that changed data
    means a new output folder. ``specials``: the special tokens' strings of the encoder's tokenizer
    (``lrl.model.special_text.folder_specials``)."""
    out = {}
    for lang, tables in splits.items():
        h = hashlib.sha256()
        for t in tables:
            for col in ("id", "tokens", "tags"):
                h.update(repr(t.column(col).to_pylist()).encode())
        if any(table_scheme(t) == "tokens" for t in tables):
            # The same rows give a token tagger other labels than a NER model (no O, no I-X): its
            # outputs made with the BIO labels are not reused. IOB2 data hashes as before.
            h.update(b"scheme:tokens")
        if specials and any(holds_specials(t.column("tokens"), specials) for t in tables):
            # A word "[SEP]" is read as its characters now (lrl.train.align), no longer as the
            # special token: its language's outputs are made again. Other languages hash as before.
            h.update(b"typed_specials:%d" % TYPED_SPECIALS)
        out[lang] = h.hexdigest()[:16]
    return out


def resolve_model(ctx: StageContext, splits: dict[str, tuple[pa.Table, pa.Table]], stage: str = "tune") -> str:
    """The encoder folder: ``tune.model_path`` (the tune stage only), else ``finetune.model``, else
    the pretrain stage's output; ``preset:<name>`` builds a from-scratch encoder on the training
    tokens (cached by content)."""
    cfg = ctx.cfg
    model = encoder_setting(cfg, stage)[1] or ctx.upstream.get("pretrain")
    if model is None:
        # Run alone, a stage reads no earlier run's outputs: "run pretrain first" sent users to
        # `lrl pretrain`, after which `lrl finetune` still stopped here (and finetune was named tune).
        # Only `lrl tune` / `lrl finetune` get here: `lrl run` checks pipeline.stages before its first
        # stage (lrl.pipeline.preflight.check_encoder), so "lrl run JOB --only finetune" was no advice
        # (without a recorded pretrain output it stops on that, with one it needs no setting).
        settings = "tune.model_path (or finetune.model)" if stage == "tune" else "finetune.model"
        key = "tune.model_path" if stage == "tune" else "finetune.model"
        raise ConfigError(f"{stage} needs an encoder: lrl {stage} runs the {stage} stage alone and reads no pretrain "
                          f"stage's output; set {settings} to a pretrain-<hash> output folder (as lrl pretrain "
                          "or lrl run writes under output.root), a Hugging Face model folder, or preset:micro to "
                          f"train one from scratch (lrl {stage} JOB {key}=runs/pretrain-<hash>); or run the job "
                          f"as a pipeline (lrl run JOB) with pretrain before {stage} in pipeline.stages, which "
                          "fine-tunes the pretrain stage's output")
    if model.startswith("preset:"):
        # Positions for finetune.max_length pieces, as train_tagger builds a preset for itself.
        return _scratch(cfg.output.root, model, splits, cfg.seed, cfg.finetune.max_length)
    if is_remote(model):  # on an object store: each Ray task copies it (finetune_model.resolve_model_path)
        for sub in (model.rstrip("/"), f"{model.rstrip('/')}/model", f"{model.rstrip('/')}/hf"):
            if is_file(f"{sub}/config.json"):
                return sub
    else:
        path = Path(model)
        for sub in (path, path / "model", path / "hf"):  # a pretrain output keeps its HF folder inside
            if (sub / "config.json").is_file():
                return str(sub.resolve())  # absolute: Ray workers and Tune trials run in other folders
    raise ConfigError(f"{model}: not a Hugging Face model folder (no config.json)")


def check_encoder(model_path: str, max_length: int, freeze: list[int], freeze_setting: str) -> None:
    """Before Ray starts, what the encoder's config.json can tell: ``freeze`` choices deeper than
    its layers, or ``finetune.max_length`` beyond its positions, would otherwise fail inside every
    Ray task or Tune trial, behind a long remote traceback (and a search saved the best of the
    trials that survived). ``Tagger.from_encoder`` checks the loaded model the same way."""
    try:
        c = read_json(f"{model_path}/config.json")  # on an object store too
    except (OSError, ValueError):
        c = {}
    layers = c.get("num_hidden_layers")
    deep = [k for k in freeze if isinstance(layers, int) and k > layers]
    if deep:
        shown = freeze if freeze_setting.startswith("tune.") else freeze[0]
        raise ConfigError(f"{freeze_setting}={shown}: {deep} deeper than the encoder {model_path}, which has "
                          f"{layers} layers (choose at most {layers})")
    positions = c.get("max_position_embeddings")
    if isinstance(positions, int) and c.get("position_embedding_type", "absolute") == "absolute":
        # RoBERTa-like models number positions from pad_token_id + 1 (two of XLM-R's 514 unusable).
        limit = positions - (c.get("pad_token_id", 0) + 1 if "roberta" in str(c.get("model_type")) else 0)
        if max_length > limit:
            raise ConfigError(f"finetune.max_length={max_length} but the encoder {model_path} has positions "
                              f"for {limit} pieces; set finetune.max_length <= {limit}")


def _scratch(root: str, preset: str, splits: dict[str, tuple[pa.Table, pa.Table]], seed: int,
             positions: int = 256) -> str:
    """A ``preset:`` encoder built on the training tokens, with ``positions`` position embeddings
    (``finetune.max_length``: 256 fixed made longer inputs a load error), cached by content under
    ``<output.root>/encoders/``. Built by ``finetune_scratch.build_preset_on_rows``, as
    ``train_tagger`` builds a preset: the tune stage searched on another model (a plain BertConfig
    of 2000 pieces) than the one the name meant there."""
    from lrl.model.build import preset_sizes
    from lrl.train import finetune_scratch

    # An unknown name fails here, before anything is built (lrl.model.build's table: this stage
    # once kept its own, and a preset name could mean two models).
    preset_sizes(preset.removeprefix("preset:"))
    # ENCODER_VERSION names encoders built otherwise from the same rows (2: the tokenizer decodes
    # pieces into words; 3: lrl.model.build's preset config), so older caches rebuild.
    parts = (preset, seed, fingerprint(splits), positions, ("encoder", finetune_scratch.ENCODER_VERSION))
    key = hashlib.sha256(repr(parts).encode()).hexdigest()[:12]
    if is_remote(root):  # built here, uploaded with config.json last (what says it is whole)
        out_uri = f"{root.rstrip('/')}/encoders/{preset[7:]}-{key}"
        if not is_file(f"{out_uri}/config.json"):
            with tempfile.TemporaryDirectory(prefix="lrl-encoder-") as tmp:
                finetune_scratch.build_preset_on_rows(Path(tmp), preset, [train for train, _ in splits.values()],
                                                      seed, positions)
                upload_folder(tmp, out_uri, last=("config.json",))
        return out_uri
    out = (Path(root) / "encoders" / f"{preset[7:]}-{key}").resolve()
    if not (out / "config.json").is_file():
        # Built beside its final name and renamed when complete: a run killed halfway must not leave
        # a folder with config.json but no weights, which every later run would take as finished.
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            # Every language's training rows: one encoder (and vocabulary) for the whole job.
            finetune_scratch.build_preset_on_rows(tmp, preset, [train for train, _ in splits.values()], seed,
                                                  positions)
            if out.exists() and not (out / "config.json").is_file():
                shutil.rmtree(out)  # an unfinished leftover of an older, non-atomic build
            if not out.exists():  # else a concurrent run finished the same encoder first
                tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(out)
