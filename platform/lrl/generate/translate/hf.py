"""Hugging Face seq2seq translation (Marian, NLLB, M2M100) with each family's language codes.

The model is loaded once per process, from safetensors, with ``trust_remote_code`` off unless the
config turns it on. Inputs are sorted by length before batching (less padding, same results) and
put back in their order afterwards.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lrl.generate.mt_config import MTModelConfig
from lrl.model.build import readable_weights

# Each refusal is a reject kind of its own (the text before the colon, which the manifest's
# rejects_per_reason counts): under one "translation" kind a user could not tell inputs too long
# for max_length from outputs cut at it (a limit too low, or a model repeating itself) without
# reading the rejects dataset.
TOO_LONG = "translation_too_long: input longer than max_length tokens"
CUT = "translation_cut: output stopped at max_length tokens"
EMPTY = "translation_empty: the model returned nothing"


class Refused(NamedTuple):
    """A translation that must not be used as one: the reject ``reason`` and what the model
    produced (None when nothing was generated), kept for the rejects dataset."""

    reason: str
    text: str | None = None

# ISO 639 -> NLLB/FLORES codes for the languages of ../shared/data (others: pass tgt_code).
NLLB_CODES = {
    "en": "eng_Latn", "ug": "uig_Arab", "wo": "wol_Latn", "am": "amh_Ethi", "ha": "hau_Latn",
    "ig": "ibo_Latn", "rw": "kin_Latn", "sw": "swh_Latn", "yo": "yor_Latn", "ky": "kir_Cyrl",
    "tk": "tuk_Latn", "tr": "tur_Latn", "kk": "kaz_Cyrl", "uz": "uzn_Latn", "fr": "fra_Latn",
}


_ISO_OF_NLLB = {v: k for k, v in NLLB_CODES.items()}


def detect_family(model: Any, tokenizer: Any) -> str:
    """marian / nllb / m2m100 / plain, from the model type and tokenizer class."""
    mtype = getattr(model.config, "model_type", "")
    if mtype == "marian":
        return "marian"
    if "nllb" in type(tokenizer).__name__.lower():
        return "nllb"
    if mtype == "m2m_100":
        return "m2m100"
    return "plain"


def lang_code(family: str, lang: str, given: str | None) -> str | None:
    """The code a family expects for ``lang`` (ISO 639, optionally ``_Script``)."""
    if given:
        return given
    if family == "nllb":
        return lang if "_" in lang else NLLB_CODES.get(lang, lang)
    if family == "m2m100":
        # M2M100 names languages by ISO 639-1 where one exists: FLORES' swh_Latn is its "sw".
        return _ISO_OF_NLLB.get(lang, lang.split("_")[0])
    return None


class HFTranslator:
    """Translate lists of strings with one seq2seq model; heavy state loads in ``__init__``,
    which Ray runs once per actor."""

    def __init__(self, cfg: MTModelConfig, src_lang: str, tgt_lang: str) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.cfg = cfg
        self.device = _device(cfg)
        if self.device == "cpu":
            torch.set_num_threads(max(1, round(cfg.cpus_per_actor)))
        dtype = getattr(torch, cfg.dtype)
        if self.device == "cpu" and dtype == torch.float16:
            raise ValueError("dtype float16 needs a GPU; use bfloat16 or float32 on CPU")
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code)
        with readable_weights(f"translation model {cfg.model}"):  # truncated or corrupt: one line
            self.model = AutoModelForSeq2SeqLM.from_pretrained(
                cfg.model, use_safetensors=True, trust_remote_code=cfg.trust_remote_code, dtype=dtype
            ).to(self.device).eval()
        if (why := over_positions(cfg, self.model.config.to_dict())) is not None:
            raise ValueError(f"translate: {why}")
        self.family = detect_family(self.model, self.tokenizer) if cfg.family == "auto" else cfg.family
        self.src = lang_code(self.family, src_lang, cfg.src_code)
        self.tgt = lang_code(self.family, tgt_lang, cfg.tgt_code)
        # Greedy or beam search, whatever the checkpoint's generation_config says: one that set
        # do_sample gave other translations on every run (and every actor), unseeded.
        self.gen_kwargs: dict[str, Any] = {"num_beams": cfg.num_beams, "max_length": cfg.max_length,
                                           "do_sample": False}
        self._checked: set[str | None] = {self.src}  # source codes known to be in the vocabulary
        if self.family in ("nllb", "m2m100"):
            self._code_id(self.src, src_lang, "source")
            self.tokenizer.src_lang = self.src
            self.gen_kwargs["forced_bos_token_id"] = self._code_id(self.tgt, tgt_lang, "target")

    def _code_id(self, code: str | None, lang: str, which: str) -> int:
        """The vocabulary id of a language code, or a ValueError naming it (``code_id``)."""
        got = code_id(self.tokenizer, self.family, code)
        if got is None:
            raise ValueError(code_problem(self.cfg.model, code, lang, which))
        return got

    def translate(self, texts: list[str], src: str | None = None) -> list[str | Refused | None]:
        """The translations; None for an input over ``max_length`` tokens (truncating it would
        translate a fragment), ``Refused(CUT, output)`` for an output that generation stopped at
        ``max_length`` tokens (a fragment, or a model repeating itself). ``src`` (ISO 639)
        overrides the source language for this call."""
        import torch

        if not texts:
            return []
        if self.family in ("nllb", "m2m100"):
            code = lang_code(self.family, src, self.cfg.src_code) if src else self.src
            if code not in self._checked:
                self._code_id(code, src or "", "source")
                self._checked.add(code)
            self.tokenizer.src_lang = code
        prefix = f"{self.cfg.prefix} " if self.cfg.prefix else ""
        # A special token's string typed in a sentence (an NLLB language code, "</s>") is not read
        # as that token; the codes and "</s>" the tokenizer adds itself come by id, and Marian's
        # ">>xx<<" prefix is read by its own _tokenize. (A Unigram vocabulary holding "</s>" as a
        # piece, as the tiny Marian's does, still reads it so: lrl.model.special_text.)
        split = {"split_special_tokens": True}
        sizes = [len(ids) for ids in self.tokenizer([prefix + t for t in texts], **split)["input_ids"]]
        fits = [i for i in range(len(texts)) if sizes[i] <= self.cfg.max_length]
        order = sorted(fits, key=lambda i: len(texts[i]))
        out: list[str | Refused | None] = [None] * len(texts)
        bs = self.cfg.batch_size
        for k in range(0, len(order), bs):
            idx = order[k : k + bs]
            enc = self.tokenizer([prefix + texts[i] for i in idx], return_tensors="pt", padding=True,
                                 truncation=True, max_length=self.cfg.max_length, **split).to(self.device)
            with torch.inference_mode():
                gen = self.model.generate(**enc, **self.gen_kwargs)
            for i, s, cut in zip(idx, self.tokenizer.batch_decode(gen, skip_special_tokens=True), self.cut(gen)):
                out[i] = Refused(CUT, s.strip()) if cut else s.strip()
        return out

    def cut(self, gen: Any) -> list[bool]:
        """Which rows of a ``generate`` output stopped at ``max_length`` instead of at their end
        token. Position 0 is the decoder start (NLLB's is ``</s>`` itself) and a model with
        ``forced_eos_token_id`` (Marian) writes ``</s>`` at the last position of a cut output, so
        a row ended only if ``</s>`` comes between them. A sentence that really ends exactly at
        the limit counts as cut: it cannot be told apart from one the limit ended."""
        import torch

        if gen.shape[1] < self.cfg.max_length:  # the longest row ended before the limit
            return [False] * gen.shape[0]
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        eos = torch.tensor(eos if isinstance(eos, list) else [eos], device=gen.device)
        return (~torch.isin(gen[:, 1:-1], eos).any(dim=1)).tolist()


def code_id(tokenizer: Any, family: str, code: str | None) -> int | None:
    """The vocabulary id of a language code, None when the tokenizer lacks it. A source code was
    not checked: NLLB's tokenizer then put ``<unk>`` where the language token goes (``so`` for
    Somali, whose code is ``som_Latn``) and translated every row as if from no language."""
    try:
        got = tokenizer.get_lang_id(code) if family == "m2m100" else tokenizer.convert_tokens_to_ids(code)
    except (KeyError, TypeError):
        got = None
    return None if got is None or got == tokenizer.unk_token_id else got


def code_problem(model: str | None, code: str | None, lang: str, which: str) -> str:
    setting = "src_code" if which == "source" else "tgt_code"
    return (f"{model}: {which} language code {code!r} (for {lang!r}) is not in its vocabulary; set {setting} "
            "to the model's code (NLLB: like 'som_Latn', M2M100: like 'so')")


def over_positions(cfg: MTModelConfig, conf: dict) -> str | None:
    """Why ``cfg.max_length`` is over the positions the model has (``max_position_embeddings``
    of its config), or None. Marian's position table is fixed: generating past it raised an
    IndexError inside the actor pool, for every batch, after the model had loaded."""
    most = conf.get("max_position_embeddings")
    if isinstance(most, int) and cfg.max_length > most:
        return (f"max_length={cfg.max_length} is over the {most} positions of {cfg.model!r}: "
                f"set max_length to {most} or less")
    return None


def _device(cfg: MTModelConfig) -> str:
    """``cuda`` when the actor reserved a GPU, else ``cpu``: never CUDA without ``num_gpus``. Ray 2.60
    leaves CUDA_VISIBLE_DEVICES unset for an actor that reserved no GPU, so such an actor sees every
    GPU of its node, reserved for others. With ``num_gpus`` Ray shows the actor only its GPU(s), so
    ``cuda`` is the first one it was given (a fraction: a GPU it shares).

    A reserved GPU that torch cannot see (a CPU-only torch build, a driver torch does not support)
    is an error: this fell back to the CPU in silence, with ``cpus_per_actor`` threads (one by
    default), while the GPU stayed reserved."""
    if cfg.num_gpus == 0:
        return "cpu"
    import os

    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            f"translate: num_gpus={cfg.num_gpus:g} reserved a GPU for this actor but torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}) sees none (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}): install a CUDA build of torch on the GPU nodes, "
            "or set num_gpus=0 to translate on CPUs")
    return "cuda"


def check_model(cfg: MTModelConfig, setting: str) -> None:
    """Fail on the driver, naming the setting, when ``cfg.model`` is a local path that is missing,
    has no ``config.json`` or is not a seq2seq model (inside the actor pool such an error showed
    only as an ActorDiedError). Hub ids are left to transformers."""
    import json
    import os

    from lrl.config import ConfigError

    if cfg.backend != "hf" or not cfg.model:
        return
    path = os.path.expanduser(cfg.model)
    from lrl.data.local_or_hub import looks_like_path

    looks_local = looks_like_path(path)  # as the driver's preflight tells a path from a hub id
    if not os.path.exists(path):
        if looks_local:
            raise ConfigError(f"{setting}.model: {cfg.model!r} does not exist")
        return
    conf = os.path.join(path, "config.json")
    if not os.path.isfile(conf):
        raise ConfigError(f"{setting}.model: {cfg.model!r} has no config.json (not a Hugging Face model folder)")
    with open(conf, encoding="utf-8") as fh:
        conf_dict = json.load(fh)
    mtype = conf_dict.get("model_type")
    if (why := over_positions(cfg, conf_dict)) is not None:
        raise ConfigError(f"{setting}.{why}")
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

    if not cfg.trust_remote_code and mtype not in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        raise ConfigError(f"{setting}.model: {cfg.model!r} is a {mtype!r} model, not a seq2seq translation "
                         "model (Marian, NLLB, M2M100, ...)")
    weights = sorted(name for name in os.listdir(path) if name.endswith(".safetensors"))
    if not weights:
        raise ConfigError(f"{setting}.model: {cfg.model!r} has no .safetensors weights (lrl loads no pickled "
                         "weights; convert them with save_pretrained(..., safe_serialization=True))")
    from safetensors import safe_open

    for name in weights:  # their headers only: a truncated file showed as an ActorDiedError from the pool
        with readable_weights(f"{setting}.model: {cfg.model!r}", name), safe_open(os.path.join(path, name), "numpy"):
            pass


def make_translator(cfg: MTModelConfig, src_lang: str, tgt_lang: str, seed: int = 0):
    """The translator a model config names (``hf`` or ``fake``)."""
    if cfg.backend == "fake":
        from lrl.generate.translate.fake import FakeTranslator

        return FakeTranslator(cfg.fake, seed)
    return HFTranslator(cfg, src_lang, tgt_lang)
