"""The pretrained folder's model card: its "How to use" code runs on the folder as written, and
feeds the model what training fed it (the language's tag after [CLS]; with language embeddings,
the language's index as every token type id)."""

from __future__ import annotations

import contextlib
import io
import json
import re

from lrl.evaluate.model_card import read_front_matter
from lrl.evaluate.pretrain_card import render_pretrain_card
from lrl.model.build import build_mlm_model, model_langs
from lrl.model.config import ModelConfig, TokenizerConfig
from lrl.model.tokenizer import save_tokenizer, train_tokenizer

UG = ["ئوتلاق ياۋا مۈشۈكى گۆشخور ھايۋان", "يىلپىز مۈشۈك ئائىلىسىگە تەۋە"] * 30
WO = ["Dafa am ay kilifa ci réew mi", "Ñoom ñépp dañu dem Ndakaaru"] * 30


def _folder(tmp_path, lang_embedding: bool):
    tok = train_tokenizer({"ug": UG, "wo": WO}, TokenizerConfig(vocab_size=120, min_frequency=1))
    model = build_mlm_model(ModelConfig(preset="tiny", lang_embedding=lang_embedding, max_length=32), tok, ["wo", "ug"])
    folder = tmp_path / f"mlm-{lang_embedding}"
    model.save_pretrained(folder, safe_serialization=True)
    save_tokenizer(tok, folder, 32)
    metrics = {"step": 5, "steps_planned": 5, "alpha": 0.3, "languages": ["ug", "wo"],
               "trained_tokens": {"mlm": 1280, "aux": 0}, "train_rows": {"ug": 57, "wo": 57},
               "heldout_rows": {"ug": 3, "wo": 0}, "ppl_ug": 81.25, "ppl_wo": float("nan"),
               "target_mixture": {"ug": {"target_p": 0.5, "realised_p": 0.5}, "wo": {"target_p": 0.5, "realised_p": 0.5}},
               "stream_mixture": {"ug": {"token_share": 0.47}, "wo": {"token_share": 0.53}},
               "engine": "deepspeed", "num_workers": 2, "precision": "bf16", "device": "cpu"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder, tok, model


def _code(card: str, folder) -> str:
    (block,) = re.findall(r"```python\n(.*?)```", card, re.S)
    return block.replace("THIS_FOLDER", str(folder))


def test_the_card_says_how_to_pass_the_tag_and_its_code_runs(tmp_path):
    """Without a card nothing said that training put ``[ug]`` after ``[CLS]``: fill-mask users fed
    the model text in a form it never saw (a user's audit)."""
    folder, tok, _ = _folder(tmp_path, lang_embedding=False)
    card = render_pretrain_card(str(folder), "cc-by-sa-4.0", [{"path": "mono/ug.txt", "lang": "ug"}],
                                {"rate": 0.15, "whole_word": True})
    fm = read_front_matter(card)
    assert fm["pipeline_tag"] == "fill-mask" and fm["language"] == ["ug", "wo"] and fm["license"] == "cc-by-sa-4.0"
    assert "`[ug]`, `[wo]`" in card and "put the tag first" in card
    # The advice gives the training layout: [CLS] [ug] text ... [SEP]
    ids = tok("[ug] ئوتلاق ياۋا")["input_ids"]
    assert ids[:2] == [tok.cls_token_id, tok.convert_tokens_to_ids("[ug]")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_code(card, folder), {})
    assert "'score'" in out.getvalue()  # the pipeline's predictions
    # Held-out perplexity per language; a language with no held-out rows says so instead of nan.
    assert "| ug | 57 | 3 | 0.500 | 0.500 | 0.470 | 81.2 |" in card
    assert "| wo | 57 | 0 |" in card and "n/a (no held-out rows)" in card and "nan" not in card


def test_with_language_embeddings_the_card_passes_the_type_ids(tmp_path, monkeypatch):
    """``pipeline("fill-mask")`` cannot pass token type ids: every text would read as the first
    language. The card's code sets them to the language's index, in the model's own order."""
    import torch

    folder, _, model = _folder(tmp_path, lang_embedding=True)
    card = render_pretrain_card(str(folder), "other", [], {"rate": 0.15})
    langs = model_langs(model.config)
    assert f"LANGS = {langs!r}" in card and "cannot pass them" in card
    seen = []
    forward = type(model).forward

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("token_type_ids"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(_code(card, folder).replace('lang, text = "ug"', 'lang, text = "wo"'), {})
    (types,) = seen
    assert types is not None and torch.all(types == langs.index("wo"))
    assert langs.index("wo") != 0  # the case the pipeline gets wrong


def test_an_unstated_license_is_said_in_words(tmp_path):
    folder, _, _ = _folder(tmp_path, lang_embedding=False)
    card = render_pretrain_card(str(folder), "other", [], {"rate": 0.15})
    assert read_front_matter(card)["license_name"] == "unspecified"
    assert "Not stated" in card


def test_text_through_the_generate_stage_is_said_as_it_went(ray_session, tmp_path):
    """Under ``lrl run`` every source read "(through the generate stage: filtered and deduplicated)",
    also where the stage had no text step and passed the text on as read (the default)."""
    from lrl.evaluate.pretrain_card import through_generate, write_pretrain_card
    from lrl.generate.stage import run_generate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    conll = tmp_path / "ug.conll"
    conll.write_text("Ali\tB-PER\nkeldi\tO\n\nQeshqer\tB-LOC\nchong\tO\n\n", encoding="utf-8")
    text = tmp_path / "ug.txt"
    text.write_text("\n".join(UG[:4]) + "\n", encoding="utf-8")

    def generated(*extra: str) -> str:
        cfg = load_job(None, [f"data.ner=[{{path: {conll}, lang: ug}}]", f"data.text=[{{path: {text}, lang: ug}}]",
                              f"output.root={tmp_path / 'runs'}", *extra])
        return run_generate(StageContext(cfg), quiet=True)

    as_read = generated()
    assert through_generate(as_read) == "through the generate stage, as read"
    assert through_generate(generated("filter.ops=[dedup]", "filter.dedup_scope=all")) == \
        "through the generate stage: dedup"
    assert through_generate(None) == ""
    folder, _, _ = _folder(tmp_path, lang_embedding=False)
    cfg = load_job(None, [f"data.text=[{{path: {text}, lang: ug}}]"])
    write_pretrain_card(str(folder), cfg, as_read)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"- `{text}` (ug; through the generate stage, as read)" in card and "filtered" not in card
