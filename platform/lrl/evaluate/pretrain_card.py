"""The model card (README.md) of a pretrained masked-LM folder, the pretrain stage's output.

Fine-tuned folders had cards; the pretrained one had none, so nothing in it said that every
training sequence began with ``[CLS]`` and its language's tag token, nor, with
``model.lang_embedding``, that the language's index goes in ``token_type_ids``: plain transformers
(``pipeline("fill-mask")``) then reads every text without its tag, and as the first language.
The card is built from what the folder itself holds (``config.json``'s ``lrl_langs``,
``lrl_lang_embedding`` and ``lrl_init``; ``metrics.json``) and the job's data sources and license.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow.fs as pafs
import yaml

from lrl.evaluate.model_card import _init, _is_hub_id, _origin

LIMITS = (
    "Pretrained on a few million words or fewer of a low-resource language; its predictions reflect "
    "that text's domain (often Wikipedia or news), spelling and script. Held-out perplexity is "
    "measured on documents of the same corpus that training left out, and is not comparable between "
    "models with different tokenizers. A masked LM is a starting point for fine-tuning (e.g. `lrl "
    "finetune JOB.yaml finetune.model=THIS_FOLDER`), not a text generator."
)


def _read(folder: str, name: str) -> dict[str, Any]:
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return json.load(f)


def _mask_token(folder: str) -> str:
    try:
        mask = _read(folder, "tokenizer_config.json").get("mask_token")
    except (OSError, ValueError):
        mask = None
    if isinstance(mask, dict):  # older transformers write the AddedToken's fields
        mask = mask.get("content")
    return mask if isinstance(mask, str) else "[MASK]"


def _num(x: Any, fmt: str) -> str:
    return "n/a" if not isinstance(x, (int, float)) or x != x else format(x, fmt)  # x != x: NaN


UNTRAINED_LIMITS = (
    "Not trained on the language by lrl (`pretrain.steps: 0`): its new pieces' embeddings and the "
    "language tags are initialised, not learned, so its masked-token predictions are poor (see the "
    "held-out perplexity). It is a starting point for fine-tuning (e.g. `lrl finetune JOB.yaml "
    "finetune.model=THIS_FOLDER`), not a text generator."
)
#: The same for a model built from a preset (no checkpoint): every weight is random.
RANDOM_LIMITS = (
    "Not trained at all (`pretrain.steps: 0` without `model.checkpoint`): every weight is random, as "
    "initialised. It is a from-scratch baseline for fine-tuning, not a language model: its "
    "masked-token predictions are noise (see the held-out perplexity)."
)


def how_to_use(langs: list[str], lang_embedding: bool, mask: str, trained: bool = True) -> str:
    """The card's "How to use": the language tag first; with language embeddings, the language's
    index in ``token_type_ids`` (which the fill-mask pipeline cannot pass)."""
    first = langs[0]
    tags = ", ".join(f"`[{x}]`" for x in langs)
    text = [
        "## How to use\n",
        f"Each training sequence was `[CLS]`, the language's tag token ({tags}), then the text: put the tag first.\n"
        if trained else f"lrl's fine-tuning reads `[CLS]`, the language's tag token ({tags}), then the text: "
        "put the tag first.\n",
    ]
    if not lang_embedding:
        text += [
            "```python",
            "from transformers import pipeline",
            "",
            'fill = pipeline("fill-mask", model="THIS_FOLDER")',
            f'print(fill("[{first}] ... a sentence in {first} with one word replaced by {mask} ..."))',
            "```\n",
        ]
    else:
        text += [
            "The model also has a learned language embedding: its token type ids are the language's "
            f"index in {langs} at every position. `pipeline(\"fill-mask\")` cannot pass them (every text "
            f"would read as `{first}`), so call the model directly:\n",
            "```python",
            "import torch",
            "from transformers import AutoModelForMaskedLM, AutoTokenizer",
            "",
            f"LANGS = {langs!r}",
            'tok = AutoTokenizer.from_pretrained("THIS_FOLDER")',
            'model = AutoModelForMaskedLM.from_pretrained("THIS_FOLDER").eval()',
            f'lang, text = "{first}", "... a sentence with one word replaced by {mask} ..."',
            'enc = tok(f"[{lang}] {text}", return_tensors="pt")',
            'enc["token_type_ids"] = torch.full_like(enc["input_ids"], LANGS.index(lang))',
            "with torch.no_grad():",
            "    logits = model(**enc).logits",
            "at = (enc[\"input_ids\"][0] == tok.mask_token_id).nonzero()[0, 0]",
            "print(tok.convert_ids_to_tokens(logits[0, at].topk(5).indices))",
            "```\n",
        ]
    text.append("`lrl finetune` and `lrl run` (`finetune.model: THIS_FOLDER`) add the tag"
                + (" and the type ids" if lang_embedding else "") + " themselves.\n")
    return "\n".join(text)


def render_pretrain_card(
    folder: str,
    license: str,  # noqa: A002 (the card's field, as in CardInfo)
    sources: list[dict[str, Any]],
    masking: dict[str, Any],
    aux: str | None = None,
) -> str:
    """The README.md text of the pretrained folder ``folder`` (config.json and metrics.json read
    from it). ``sources``: ``{"path", "lang"}`` per text source, and ``via`` (``through_generate``)
    when the generate stage passed it on; ``masking``: rate, whole_word."""
    conf, m = _read(folder, "config.json"), _read(folder, "metrics.json")
    langs = list(conf.get("lrl_langs") or m.get("languages") or [])
    init = _init(folder)
    fm: dict[str, Any] = {
        "language": langs, "license": license,
        **({"license_name": "unspecified"} if license == "other" else {}),
        "library_name": "transformers", "pipeline_tag": "fill-mask",
        "tags": ["fill-mask", "masked-lm", "low-resource", "lrl"],
    }
    if init and _is_hub_id(init["checkpoint"]):
        fm["base_model"] = init["checkpoint"]
    size = (f"{conf.get('model_type', 'bert')}, {conf.get('num_hidden_layers')} layers, hidden "
            f"{conf.get('hidden_size')}, {conf.get('vocab_size')} tokens, up to "
            f"{conf.get('max_position_embeddings')} positions")
    steps = m.get("step")
    planned = m.get("steps_planned")
    tokens = (m.get("trained_tokens") or {}).get("mlm")
    trained = m.get("trained") is not False  # False: pretrain.steps 0 (lrl.train.pretrain_init_only)
    what = (f"pretrained by lrl for {steps} steps" + (f" of {planned} planned" if planned and planned != steps else "")
            + (f", {tokens:,} tokens" if isinstance(tokens, int) else "") if trained else
            "as lrl built it, not trained by lrl (`pretrain.steps: 0`): "
            + ("the starting checkpoint with its embeddings grown for the tokenizer's new pieces" if init
               else "freshly initialised weights, a baseline only"))
    body = [f"# lrl-{'-'.join(langs)}-mlm\n",
            f"A masked language model ({size}) for {', '.join(langs)}, {what}."
            + (" " + _origin(folder).replace("That model", "It") if init else "") + "\n",
            how_to_use(langs, bool(conf.get("lrl_lang_embedding")), _mask_token(folder), trained),
            "## Training data and held-out perplexity\n",
            f"Languages were sampled with p ∝ n^{m.get('alpha')} over their training rows (the target), "
            "and the packed stream's token share is what training saw.\n" if trained else
            "Nothing was trained: the held-out perplexity is that of the model as built (fp32), on "
            "the documents a training run of this job would hold out.\n",
            "| language | training rows | held-out rows | target p | realised p | stream token share | held-out perplexity |",
            "|---|---|---|---|---|---|---|"]
    target, stream = m.get("target_mixture") or {}, m.get("stream_mixture") or {}
    for lang in langs:
        t, s = target.get(lang, {}), stream.get(lang, {})
        held = (m.get("heldout_rows") or {}).get(lang, 0)
        ppl = _num(m.get(f"ppl_{lang}"), ".1f") if held else "n/a (no held-out rows)"
        body.append(f"| {lang} | {(m.get('train_rows') or {}).get(lang, 'n/a')} | {held} | "
                    f"{_num(t.get('target_p'), '.3f')} | {_num(t.get('realised_p'), '.3f')} | "
                    f"{_num(s.get('token_share'), '.3f')} | {ppl} |")
    body.append("")
    body += [f"- `{src['path']}` ({src['lang']}" + (f"; {src['via']}" if src.get("via") else "") + ")" for src in sources]
    body += ["", f"Masked LM: {100 * masking.get('rate', 0):g}% of pieces"
             + (", whole words" if masking.get("whole_word") else "")
             + (f"; with {aux}" if aux else "") + (f". {m.get('engine')} on {m.get('num_workers')} worker(s), "
             f"{m.get('precision')}, {m.get('device')}.\n" if trained else " (the held-out evaluation's masks).\n"),
             "## Limitations\n", (LIMITS if trained else UNTRAINED_LIMITS if init else RANDOM_LIMITS) + "\n", "## License\n",
             (f"`{license}`." if license != "other" else "Not stated: check the licenses of the training text.")
             + (f" The starting checkpoint's license: `{init['license']}`." if init and init.get("license") else "")
             + "\n"]
    return "---\n" + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(body)


def through_generate(generate_dir: str | None) -> str:
    """How the generate stage's folder ``generate_dir`` passed ``data.text`` on, for the card's list
    of sources; "" when pretraining read the files (no such stage, or no ``text/`` in its folder).
    Its text steps, as its manifest names them: every such source read "filtered and deduplicated",
    where without back-translation or a filter that rejects rows as read (the defaults) the text
    goes through as read."""
    from lrl.data.files import filesystem, read_json

    if not generate_dir:
        return ""
    fs, inner = filesystem(f"{generate_dir.rstrip('/')}/text")
    if fs.get_file_info(inner).type == pafs.FileType.NotFound:
        return ""  # pretraining read data.text itself (lrl.train.pretrain_data.load_text)
    try:
        steps = read_json(f"{generate_dir.rstrip('/')}/manifest.json").get("text_steps")
    except (OSError, ValueError):
        steps = None
    if not isinstance(steps, list):
        return "through the generate stage"
    return f"through the generate stage: {', '.join(steps)}" if steps else "through the generate stage, as read"


def write_pretrain_card(folder: str, cfg, generate_dir: str | None = None) -> str:
    """Write ``folder``/README.md for the job ``cfg`` (a ``JobConfig``); returns its path.
    ``generate_dir``: the generate stage's folder under ``lrl run`` (its ``text/`` is ``data.text``
    as that stage passed it on, ``through_generate``)."""
    p = cfg.pretrain
    via = through_generate(generate_dir)
    sources = [{"path": src.path, "lang": src.lang, **({"via": via} if via else {})} for src in cfg.data.text]
    aux = f"an auxiliary {p.aux.column.upper()} tagging task" if p.aux.conllu else None
    text = render_pretrain_card(folder, cfg.report.license, sources,
                                {"rate": p.masking.rate, "whole_word": p.masking.whole_word}, aux)
    path = os.path.join(folder, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


__all__ = ["RANDOM_LIMITS", "UNTRAINED_LIMITS", "how_to_use", "render_pretrain_card", "through_generate", "write_pretrain_card"]
