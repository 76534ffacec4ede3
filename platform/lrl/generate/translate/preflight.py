"""Checks of the translation models on the driver, before Ray starts (``check_models``).

Inside the actor pool a bad model showed as an ActorDiedError and hundreds of lines of traceback:
a relative folder that does not exist was taken for a hub id and fetched (83 s of retries, or a
"not in the cache" error offline); a language code the model lacks (NLLB with ``sw``) was found
only when an actor loaded the model. Here: one line naming the setting, exit status 2.
"""

from __future__ import annotations

import functools
import os
from types import SimpleNamespace
from typing import TYPE_CHECKING

from lrl.data.files import is_uri, resolve
from lrl.data.local_or_hub import looks_like_path
from lrl.generate.mt_config import MTModelConfig

if TYPE_CHECKING:
    from lrl.job import JobConfig


def check_models(cfg: JobConfig) -> None:
    """A ``ConfigError`` for a translation model that is neither a folder nor on the hub (or in
    its cache, offline), for a folder ``check_model`` refuses, or for a language code its
    tokenizer lacks (checked where the tokenizer is at hand: a folder, or the hub cache)."""
    from lrl.config import ConfigError
    from lrl.generate.translate import local_model
    from lrl.generate.translate.hf import check_model

    t = cfg.translate
    if not t.enabled:
        return
    todo: list[tuple[str, MTModelConfig, list[str], str]] = []
    if t.train is not None:
        todo.append(("translate.train.model", t.train.model, list(t.train.sources), t.train.target))
    bt = t.backtranslate
    if bt is not None and (bt.labelled or bt.text):
        todo += [("translate.backtranslate.to_pivot", bt.to_pivot, [bt.lang], bt.pivot),
                 ("translate.backtranslate.from_pivot", bt.from_pivot, [bt.pivot], bt.lang)]
    for setting, m, sources, target in todo:
        if m.backend != "hf" or not m.model or is_uri(m.model):
            continue
        m = local_model(m, cfg.data.root)
        where = model_where(m.model, cfg.data.root)  # type: ignore[arg-type]
        if where is not None:
            raise ConfigError(f"{setting}.model: {m.model!r} {where}")
        check_model(m, setting)
        if (why := codes_problem(m, sources, target)) is not None:
            raise ConfigError(f"{setting}: {why}")


def model_where(model: str, root: str | None) -> str | None:
    """None when ``model`` is a folder (made absolute by ``local_model``) or a model the hub has
    (or its cache holds, offline); else the end of the error: where it was looked for."""
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        return None
    if os.path.isabs(path):
        return "does not exist"
    places = [f"{resolve(path, root)} (under data.root={root}: the job file's folder unless set)"] if root else []
    places.append(f"{os.path.abspath(path)} (under the working folder)")
    looked = "not found at " + " nor at ".join(places)
    if looks_like_path(path, [root] if root and not is_uri(root) else []):  # no hub id looks like this
        return f"does not exist: {looked}"
    problem = hub_problem(path)
    return None if problem is None else f"is neither a folder ({looked}) nor a model on the Hugging Face hub ({problem})"


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("TRANSFORMERS_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


@functools.cache
def hub_problem(model_id: str) -> str | None:
    """Why the hub cannot give ``model_id`` (None: it can, or it answered something transformers
    will explain better). The cache first (no network); online, one request without retries
    (``hf_hub_download`` retried an unreachable hub for 23 s)."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(model_id)
    except HFValidationError:
        return "not a valid hub id"
    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return None
    if offline():
        return "HF_HUB_OFFLINE is set and the local Hugging Face cache does not hold it"
    try:
        HfApi().model_info(model_id, timeout=10)
    except GatedRepoError:
        return None  # it exists; transformers says how to get access
    except RepositoryNotFoundError:
        return "the hub has no such model, or it is private and no token is set"
    except HfHubHTTPError:
        return None
    except Exception as exc:  # noqa: BLE001 - network errors of whatever HTTP client the hub uses
        return f"the hub could not be reached ({type(exc).__name__}: {exc}) and the local cache does not hold it"
    return None


def codes_problem(m: MTModelConfig, sources: list[str], target: str) -> str | None:
    """``code_problem`` for the first source or target code of ``m`` its tokenizer lacks (NLLB and
    M2M100), None when all are there, for other families, or when the tokenizer is not at hand."""
    from lrl.generate.translate.hf import code_id, code_problem, detect_family, lang_code

    if m.family not in ("auto", "nllb", "m2m100"):
        return None
    try:
        from transformers import AutoConfig, AutoTokenizer

        cached = not os.path.isdir(m.model or "")  # a hub id: only what the cache holds, no download
        conf = AutoConfig.from_pretrained(m.model, local_files_only=cached, trust_remote_code=m.trust_remote_code)
        tok = AutoTokenizer.from_pretrained(m.model, local_files_only=cached, trust_remote_code=m.trust_remote_code)
    except Exception:  # noqa: BLE001 - not cached, or a folder the actor will report on
        return None
    family = detect_family(SimpleNamespace(config=conf), tok) if m.family == "auto" else m.family
    if family not in ("nllb", "m2m100"):
        return None
    for lang, which, given in [*((s, "source", m.src_code) for s in sources), (target, "target", m.tgt_code)]:
        code = lang_code(family, lang, given)
        if code_id(tok, family, code) is None:
            return code_problem(m.model, code, lang, which)
    return None
