"""Model cards: the README.md of every saved model folder, as the Hugging Face Hub reads it.

YAML front matter (language, license, tags, metrics, model-index) lets the Hub index the model;
the body says what data it saw, how it was trained, how good it is (mean ± sd over seeds, on which
split) and what it should not be used for, so a score never travels without its context.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from lrl.data.files import filesystem, is_uri, read_json
from lrl.data.remote import is_dir, is_file
from lrl.evaluate.model_card_use import how_to_use

LIMITS = (
    "Trained on a small amount of data in a low-resource language; expect errors on text unlike the "
    "training data (other domains, spellings or scripts). WikiANN annotation is silver-standard "
    "(derived from Wikipedia links) and many of its 'sentences' are bare entity names (about half "
    "in Uyghur), so scores on running text may be lower than the dev figures here. Scores are on the dev split "
    "used for model selection, hence optimistic. Not for decisions about people without human review."
)


#: Limitations of a token-level tagger (``data.ner[].scheme: tokens``, e.g. UD POS): the WikiANN
#: remarks of ``LIMITS`` do not apply to it.
TAGGER_LIMITS = (
    "Trained on a small amount of data in a low-resource language; expect errors on text unlike the "
    "training data (other domains, spellings or scripts). Scores are on the dev split used for model "
    "selection, hence optimistic."
)

#: What a card says per task: its name suffix, intended use, Hub task name, the
#: metric's name, the Hub tag and what a score row's second column holds.
TASKS = {
    "ner": {"suffix": "ner", "use": "Named-entity recognition (token classification, IOB2 tags) for research on "
            "and prototypes for the languages listed.", "task": "Named-entity recognition",
            "metric": "span F1 (seqeval strict IOB2", "tag": "ner", "column": "entity type",
            "scores": "Span F1 in percent (seqeval, strict IOB2)"},
    # ``scheme: tokens``: each tag X was trained as the one-token span B-X; the same seqeval span F1
    # then scores tokens (= accuracy when every token is predicted a tag), and a card that said
    # "named entities" and "entity type" misdescribed a POS tagger.
    "tokens": {"suffix": "tagger", "use": "Token-level tagging (one label per token, e.g. part of speech) for "
               "research on and prototypes for the languages listed. Each tag X is predicted as B-X.",
               "task": "Token tagging", "metric": "token F1 (one-token spans; accuracy when "
               "every token gets a tag", "tag": "pos", "column": "tag",
               # Both conditions: a gold ``_`` (read as O) is no span, so with untagged gold words F1
               # differs from accuracy even when every word is predicted a tag.
               "scores": "Token F1 in percent (seqeval over one-token spans B-X: token accuracy when every "
               "token has a gold tag and is predicted one)"},
}


def card_task(cfg, langs) -> str:
    """``tokens`` when every ``data.ner`` source of ``langs`` has ``scheme: tokens`` (a POS tagger),
    else ``ner``."""
    srcs = [s for s in cfg.data.ner if s.lang in set(langs)]
    return "tokens" if srcs and all(s.scheme == "tokens" for s in srcs) else "ner"


def card_datasets(cfg, langs) -> dict[str, dict[str, str]]:
    """``{lang: {"type": hub id, "config": name}}`` for the languages of ``langs`` whose dev data
    (the split a card scores) is a Hugging Face Hub dataset (``format: hf`` with a hub id, not a
    ``save_to_disk`` folder); local files have no dataset id and are left out (``CardInfo.datasets``)."""
    from lrl.data.files import resolve, saved_dataset

    out: dict[str, dict[str, str]] = {}
    for src in cfg.data.ner:
        if src.lang not in set(langs) or src.split != "dev" or src.format != "hf" or "://" in src.path:
            continue
        # As lrl.data.readers.read_ner decides: a save_to_disk folder under data.root, else a hub id
        # as written (with data.root=../shared/data, ``wikiann`` is also a folder of CoNLL files).
        root = cfg.data.root
        if saved_dataset(resolve(src.path, root)) or not _is_hub_id(src.path, [] if is_uri(root or "") else [root]):
            continue
        out[src.lang] = {"type": src.path, **({"config": src.hf_config} if src.hf_config else {})}
    return out


def card_base(spec: str | None, model_path: str) -> str:
    """What a card names as the encoder it started from: the ``preset:<name>`` the user gave (its
    encoder is built in a scratch folder of the run), else the encoder folder. ``spec`` is
    ``finetune.model`` (or ``tune.model_path``), None when the pretrain stage's output is used."""
    return spec if spec and spec.startswith("preset:") else model_path


@dataclass
class Score:
    """One score line: a language (or ``all``), an entity type (or ``overall``), mean, sd, n."""

    lang: str
    type: str
    mean: float
    sd: float | None = None
    n: int = 1
    split: str = "dev"


@dataclass
class CardInfo:
    """Everything a card states. ``data`` rows: {"source", "lang", "split", "sentences"}."""

    name: str
    languages: list[str]
    scores: list[Score]
    config: dict[str, Any] = field(default_factory=dict)
    data: list[dict[str, Any]] = field(default_factory=list)
    base_model: str | None = None
    license: str = "other"
    labels: list[str] = field(default_factory=list)
    task: str = "ner"
    """``ner`` (IOB2 spans) or ``tokens`` (one label per token, ``TASKS``): the wording of the card."""
    intended_use: str | None = None
    """None: the task's own (``TASKS``)."""
    limits: str | None = None
    """None: ``LIMITS`` for NER, ``TAGGER_LIMITS`` for a token tagger."""
    extra_tags: list[str] = field(default_factory=list)
    datasets: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per language, the Hugging Face Hub dataset its scores are on (``{"type": id, "config": name}``,
    ``card_datasets``). The model-index lists only scores with one: the Hub reads ``dataset.type``
    as a dataset id (hub-docs ``modelcard.md``: "Required ... Use dataset id from
    https://hf.co/datasets") and rejects a result without a dataset; the task name ``ner`` that
    stood there named no dataset, and local files have no id. The body's table has every score."""
    tagger: dict[str, Any] = field(default_factory=dict)
    """The model folder's ``lrl_tagger.json`` (``lang_tags``, ``lang_type_ids``, ``head``): what lrl
    does around the model that plain transformers code must repeat to get the scores above.
    ``write_model_card`` reads it from the folder when left empty."""


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _is_hub_id(name: str, roots: list[str | None] | None = None) -> bool:
    """Whether the loader took ``name`` for a hub id, by the rule of ``lrl.data.local_or_hub``
    that the loaders follow (``model.checkpoint``, ``data.ner`` of ``format: hf``): no local folder
    and a value a hub id can be. The cards had their own rule: a regex that called ``models/x``
    (with a local ``models/``) and ``a--b`` hub ids, which the loaders refuse as missing folders,
    and ``card_datasets`` left out ``wikiann`` read from the hub when data.root held a ``wikiann``
    folder of CoNLL files."""
    from lrl.data.local_or_hub import hub_id

    return hub_id(name, roots or [])


def _init(base_model: str) -> dict | None:
    """``lrl_init`` of a local encoder's config.json (``lrl.model.build``: the checkpoint its
    pretraining started from), else None. On an object store too."""
    try:
        init = read_json(f"{base_model}/config.json").get("lrl_init")
    except (OSError, ValueError):
        return None
    return init if isinstance(init, dict) and init.get("checkpoint") else None


def _origin(base_model: str) -> str | None:
    """A line naming the checkpoint (and its license) an lrl-pretrained encoder started from: the
    card of a MiniLM transfer named only the run's pretrain folder, not MiniLM nor its license."""
    init = _init(base_model)
    if init is None:
        return None
    lic = f" (license: {init['license']})" if init.get("license") else ""
    head = "; its masked-LM head was trained from scratch" if init.get("mlm_head") == "fresh" else ""
    rows = init.get("new_embedding_rows") or 0
    grown = f"; {rows} embedding rows were added for an extended tokenizer" if rows else ""
    return f"That model continued pretraining from `{init['checkpoint']}`{lic}{head}{grown}."


def front_matter(info: CardInfo) -> dict[str, Any]:
    """The YAML header: language, license, tags, metrics and a model-index with the overall scores."""
    task = TASKS[info.task]
    results = []
    for s in info.scores:
        dataset = _index_dataset(info, s)
        if s.type != "overall" or dataset is None:
            continue
        results.append({
            "task": {"type": "token-classification", "name": task["task"]},
            "dataset": dataset,
            "metrics": [{"type": "f1", "name": f"{task['metric']}, mean of {s.n})",
                         "value": round(100 * s.mean, 2)}],
        })
    own = _checkpoint(info)
    first = next((s for s in info.scores if s.type == "overall"), None)  # the group's own score
    # Only on the group's own result (per language: its one; joint: "all"): when the joint score
    # has no single Hub dataset, results[0] is one language's, not the checkpoint's pooled one.
    if own is not None and results and first is not None and _index_dataset(info, first) is not None:
        results[0]["metrics"].append({"type": "f1", "name": f"{task['metric']}, this checkpoint: seed {own[1]})",
                                      "value": round(100 * own[0], 2)})
    fm: dict[str, Any] = {
        "language": list(info.languages),
        "license": info.license,
        # The Hub reads ``other`` with the name of that license; lrl does not know it (WikiANN
        # states none), so the card says so in words (## License) rather than name one.
        **({"license_name": "unspecified"} if info.license == "other" else {}),
        "library_name": "transformers",
        "pipeline_tag": "token-classification",
        "tags": ["token-classification", task["tag"], "low-resource", "lrl", *info.extra_tags],
        "metrics": ["seqeval"],
        **({"datasets": sorted({d["type"] for d in info.datasets.values()})} if info.datasets else {}),
    }
    origin = _init(info.base_model) if info.base_model else None
    hub = info.base_model if info.base_model and _is_hub_id(info.base_model) else \
        origin["checkpoint"] if origin and _is_hub_id(origin["checkpoint"]) else None
    if hub:
        fm["base_model"] = hub  # only hub ids belong here, not local paths (for an lrl folder: its origin)
    if results:
        fm["model-index"] = [{"name": info.name, "results": results}]
    return fm


def _index_dataset(info: CardInfo, s: Score) -> dict[str, str] | None:
    """The model-index ``dataset`` of a score: its language's Hub dataset, or for ``all`` (a joint
    model) the one dataset every language shares; None when there is none to name."""
    if s.lang == "all":
        known = [info.datasets.get(lang) for lang in info.languages]
        if not known or any(d is None for d in known) or len({d["type"] for d in known}) != 1:
            return None
        ds = {"type": known[0]["type"]}
        configs = ", ".join(d.get("config") or "" for d in known)
    else:
        if s.lang not in info.datasets:
            return None
        ds = dict(info.datasets[s.lang])
        configs = ds.get("config") or s.lang
    return {**ds, "name": f"{ds['type']} ({configs}), {s.split} split", "split": s.split}


def render(info: CardInfo) -> str:
    """The whole README.md text."""
    out = ["---", yaml.safe_dump(front_matter(info), sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    out += [f"# {info.name}", "", f"Token-classification model for {', '.join(info.languages)}, "
            "trained with lrl (low-resource language platform on Ray).", ""]
    if info.base_model and info.base_model.startswith("preset:"):
        out += [f"Started from: `{info.base_model}`, a randomly initialised encoder of that size (no "
                "pretraining) with a WordPiece tokenizer trained on its training sentences.", ""]
    elif info.base_model:
        out += [f"Started from: `{info.base_model}`.", ""]
        origin = _origin(info.base_model)
        if origin:
            out += [origin, ""]
    out += ["## Data", ""]
    if info.data:
        out += ["| source | language | split | sentences |", "|---|---|---|---|"]
        out += [f"| {d.get('source', '?')} | {d.get('lang', '?')} | {d.get('split', '?')} | {d.get('sentences', '?')} |"
                for d in info.data]
    else:
        out.append("Not recorded.")
    if info.labels:
        out += ["", _labels_line(info.labels, info.task)]
    task = TASKS[info.task]
    out += ["", "## Scores", "", f"{task['scores']}, mean ± sd over n runs (seeds).", "",
            f"| language | {task['column']} | split | F1 | ± sd | n |", "|---|---|---|---|---|---|"]
    # One run has no spread to report: its sd is stored as 0, which printed as "± 0.0", a claim of
    # perfect stability across seeds that were never run.
    out += [f"| {s.lang} | {s.type} | {s.split} | {_pct(s.mean)} | {_pct(s.sd if s.n > 1 else None)} | {s.n} |"
            for s in info.scores]
    if not info.scores:
        out.append("| — | — | — | not measured | — | 0 |")
    own = _checkpoint(info)
    if own is not None:
        out += ["", f"The model in this folder is the run of seed {own[1]}, kept as the best on dev of the "
                f"{own[2]} runs: its own dev F1 is {_pct(own[0])} (what `lrl evaluate` measures for it). The mean "
                "over seeds above estimates a new run of the recipe; the kept run's figure is optimistic, "
                "having been chosen on the same split."]
    out += ["", "## Training configuration", "", "```yaml",
            yaml.safe_dump(info.config, sort_keys=False, allow_unicode=True).rstrip() or "{}", "```", "",
            "## Intended use", "", info.intended_use or task["use"], "", "## Limitations", "",
            info.limits or (LIMITS if info.task == "ner" else TAGGER_LIMITS), "",
            "## How to use", "", *how_to_use(info.tagger, info.task)]
    if info.license == "other":
        # "WikiANN states none" told the user of a UD POS tagger about data it never saw.
        why = " (WikiANN states none)" if info.task == "ner" else ""
        out += ["## License", "", f"Not set: the training data's licenses were not settled when this model was made"
                f"{why}. Check the data's own terms, then set `report.license` to a Hub license id "
                "(e.g. `cc-by-sa-4.0`) and run again.", ""]
    return "\n".join(out)


def _labels_line(labels: list[str], task: str) -> str:
    """The model's labels; for a token tagger its tags (its labels are ``B-X`` per tag, plus ``O``
    when some training word had no tag): the card listed labels (``O, B-ADJ, I-ADJ, ...``) for the
    15 UPOS tags of UD Uyghur, and never named the tags as such."""
    if task != "tokens":
        return f"Labels: {', '.join(labels)}"
    tags = list(dict.fromkeys(x[2:] for x in labels if x.startswith("B-")))
    return f"Tags ({len(tags)}; the model's label for tag X is `B-X`): {', '.join(tags)}"


def _checkpoint(info: CardInfo) -> tuple[float, Any, int] | None:
    """(dev F1, seed, runs) of the saved model itself (``lrl_tagger.json``) when the card's scores are a
    mean over several seeds, else None. The folder holds the best seed on dev, and a card giving
    only the mean (WikiANN ug dev: 69.4 over 2 seeds) disagreed with what the model scores there
    (70.7, as ``lrl evaluate`` and the evaluate stage report it)."""
    f1, seed = info.tagger.get("dev_f1"), info.tagger.get("seed")
    overall = [s for s in info.scores if s.type == "overall"]
    if not isinstance(f1, (int, float)) or seed is None or not overall or overall[0].n < 2:
        return None
    return float(f1), seed, overall[0].n


def write_model_card(folder: str | Path, info: CardInfo) -> str:
    """Write ``README.md`` into ``folder`` (which must exist; on an object store too, where the
    stages wrote no card) and return its path (a string: a URI on an object store)."""
    base = str(folder).rstrip("/")
    fs, inner = filesystem(base)
    if not is_dir(base):
        raise FileNotFoundError(f"{base}: model folder does not exist")
    if not info.tagger and is_file(f"{base}/lrl_tagger.json"):
        info = replace(info, tagger=read_json(f"{base}/lrl_tagger.json"))
    if not info.labels and info.tagger.get("labels"):  # the tune stage's cards named no labels
        info = replace(info, labels=list(info.tagger["labels"]))
    with fs.open_output_stream(f"{inner}/README.md") as f:
        f.write(render(info).encode("utf-8"))
    return f"{base}/README.md" if is_uri(base) else os.path.join(inner, "README.md")


def read_front_matter(text: str) -> dict[str, Any]:
    """Parse the YAML header of a card (for tests and tools); an error if it is missing."""
    if not text.startswith("---\n"):
        raise ValueError("model card has no YAML front matter")
    end = text.index("\n---", 4)
    return yaml.safe_load(text[4:end]) or {}


__all__ = ["CardInfo", "Score", "render", "write_model_card", "front_matter", "read_front_matter"]
