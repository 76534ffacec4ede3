"""Language codes in translation: each family's code for a language, checked against the model's
vocabulary, switched per source language, and FLORES-style codes mapped to the model and to the
inputs' ``lang``."""

from __future__ import annotations

import pytest
from translate_jobs import Local, en_rows, job

from lrl.data.schema import ner_table


def test_language_codes_per_family():
    from lrl.generate.translate.hf import lang_code

    assert lang_code("nllb", "ug", None) == "uig_Arab"
    assert lang_code("nllb", "uig_Arab", None) == "uig_Arab"
    assert lang_code("m2m100", "uig_Arab", None) == "ug"  # M2M100 names languages by ISO 639-1
    assert lang_code("m2m100", "ug", None) == "ug"
    assert lang_code("marian", "ug", None) is None
    assert lang_code("nllb", "ug", "uig_Arab") == "uig_Arab"


def test_each_source_language_is_translated_with_its_own_code(monkeypatch):
    """NLLB and M2M100 take the source language from ``tokenizer.src_lang``: every row was
    translated as ``sources[0]`` (a Swahili sentence sent to NLLB as eng_Latn)."""
    from lrl.generate import translate
    from lrl.generate.translate import hf

    seen: list[tuple[str, str]] = []

    class Recorder:
        def translate(self, texts, src=None):
            seen.extend((src, t) for t in texts)
            return texts

    monkeypatch.setattr(hf, "make_translator", lambda *a, **k: Recorder())
    cfg = job(train={"sources": ["en", "sw"], "model": {"backend": "fake"}})
    rows = en_rows(1) + [{"id": "sw:0", "lang": "sw", "tokens": ["Juma", "alikwenda"], "tags": ["B-PER", "O"]}]
    out = translate.steps(cfg)[0].apply(Local(ner_table(rows))).table.to_pylist()
    assert len([r for r in out if r["op"] == "translate"]) == 2
    by_text = dict((t, s) for s, t in seen)
    assert by_text["[ Juma ] alikwenda"] == "sw" and by_text["Juma"] == "sw"
    assert by_text["[ John Smith ] visited [ New York City ] and [ Paris ] [ France ] . w0"] == "en"


def _tiny_nllb(path):
    """A random-init NLLB-style model whose vocabulary knows eng_Latn, swh_Latn and uig_Arab only."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["hello world", "Juma alikwenda"] * 5,
                            trainers.BpeTrainer(vocab_size=60, special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    fast = NllbTokenizerFast(tokenizer_object=tok, src_lang="eng_Latn", tgt_lang="uig_Arab",
                             additional_special_tokens=["eng_Latn", "swh_Latn", "uig_Arab"])
    fast.save_pretrained(path)
    M2M100ForConditionalGeneration(M2M100Config(
        vocab_size=len(fast), d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=1,
        decoder_attention_heads=1, encoder_ffn_dim=8, decoder_ffn_dim=8, pad_token_id=fast.pad_token_id,
        bos_token_id=0, eos_token_id=fast.eos_token_id, decoder_start_token_id=fast.eos_token_id,
    )).save_pretrained(path)
    return fast


def test_nllb_translator_switches_the_source_code_per_call(tmp_path):
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate.hf import HFTranslator

    fast = _tiny_nllb(tmp_path)
    t = HFTranslator(MTModelConfig(model=str(tmp_path), max_length=8), "en", "ug")
    assert t.family == "nllb" and t.gen_kwargs["forced_bos_token_id"] == fast.convert_tokens_to_ids("uig_Arab")
    assert len(t.translate(["Juma alikwenda"], src="sw")) == 1 and t.tokenizer.src_lang == "swh_Latn"
    t.translate(["hello"])
    assert t.tokenizer.src_lang == "eng_Latn"


def test_source_language_codes_are_checked_against_the_vocabulary(tmp_path):
    """Only the target code was checked: a source code the model lacks (``so``: NLLB's is
    ``som_Latn``) was encoded as ``<unk>`` and every row translated from no language."""
    from lrl.generate.mt_config import MTModelConfig
    from lrl.generate.translate.hf import HFTranslator

    _tiny_nllb(tmp_path)
    with pytest.raises(ValueError, match=r"source language code 'so' \(for 'so'\) is not in its vocabulary; set src_code"):
        HFTranslator(MTModelConfig(model=str(tmp_path), max_length=8), "so", "ug")
    with pytest.raises(ValueError, match=r"target language code 'wol_Latn' \(for 'wo'\).*set tgt_code"):
        HFTranslator(MTModelConfig(model=str(tmp_path), max_length=8), "en", "wo")
    t = HFTranslator(MTModelConfig(model=str(tmp_path), max_length=8), "en", "ug")
    with pytest.raises(ValueError, match=r"source language code 'wol_Latn' \(for 'wo'\)"):
        t.translate(["Dakar"], src="wo")  # a row's own language (several sources)
    assert len(t.translate(["Juma"], src="swh_Latn")) == 1 and t.tokenizer.src_lang == "swh_Latn"


def test_flores_and_wikiann_codes_map_to_the_model_and_to_the_inputs(data_root):
    """FLORES names languages ``uig_Arab``, WikiANN inputs ``ug``; rows are picked by their exact
    ``lang``, so ``sources: [eng_Latn]`` over ``en`` inputs translated nothing, silently."""
    from lrl.config import ConfigError
    from lrl.generate import translate
    from lrl.generate.translate.hf import lang_code
    from lrl.job import JobConfig

    # M2M100 uses ISO 639-1 where there is one: swh_Latn is "sw" there, not "swh".
    assert lang_code("m2m100", "swh_Latn", None) == "sw" and lang_code("m2m100", "eng_Latn", None) == "en"
    assert lang_code("nllb", "sw", None) == "swh_Latn" and lang_code("nllb", "wol_Latn", None) == "wol_Latn"

    def cfg(**tr):
        return JobConfig.model_validate({"data": {"root": str(data_root), "ner": [
            {"path": "wikiann/sw/train", "lang": "sw"}, {"path": "wikiann/wo/train", "lang": "wo"}]},
            "translate": {"enabled": True, **tr}})

    fake = {"backend": "fake"}
    assert [s.name for s in translate.steps(cfg(train={"sources": ["sw"], "target": "wo", "model": fake}))] == ["translate"]
    with pytest.raises(ConfigError, match=r"translate\.train\.sources: 'swh_Latn' is the lang of no input \(inputs: sw, wo\)"):
        translate.steps(cfg(train={"sources": ["swh_Latn"], "target": "wo", "model": fake}))
    bt = {"lang": "wol_Latn", "to_pivot": fake, "from_pivot": fake}
    with pytest.raises(ConfigError, match=r"translate\.backtranslate\.lang: 'wol_Latn'"):
        translate.steps(cfg(backtranslate=bt))
    # One src_code cannot serve several source languages: refused at load.
    with pytest.raises(ValueError, match=r"src_code 'eng_Latn' names one language but sources are \['en', 'sw'\]"):
        cfg(train={"sources": ["en", "sw"], "target": "wo", "model": {"model": "x", "src_code": "eng_Latn"}})
