"""Special-token strings typed in the text lrl encodes.

Hugging Face tokenizers match the strings of their special tokens in the text they encode
(``split_special_tokens`` is off by default): a corpus line with a literal ``[MASK]`` got the mask
id (a protected id, never predicted), ``[PAD]`` counted as padding in the attention mask (ids !=
pad), ``[ug]`` said another language, and an NER word ``[SEP]`` got the separator's id. lrl passes
``SPLIT`` wherever it encodes user text (the string's characters get their pieces) and adds its own
``[CLS]``, language tag and ``[SEP]`` by id.

Not covered: a vocabulary that itself holds a special token's string as a piece its
pre-tokenizer can leave whole. A Unigram model trained with ``special_tokens`` lists them at
score 0, and after a Metaspace-only pre-tokenizer (the tiny Marian of
``lrl.generate.translate.tiny``) the model still segments a typed ``</s>`` as that piece. lrl's
own WordPiece and Unigram tokenizers split ``[`` and ``]`` off first (BertPreTokenizer,
Punctuation), so their specials never reach the model whole.

Outputs made before read such strings as special tokens. ``typed_specials`` tells the few stages
whose text holds one, and only their output hashes name ``TYPED_SPECIALS``: every other folder
keeps its name (pretraining again for nothing would cost hours).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lrl.data.files import read_json

#: What every call that encodes user text passes to the tokenizer.
SPLIT = {"split_special_tokens": True}
#: The value of the hash key ``typed_specials`` (outputs whose text holds a special token's string).
TYPED_SPECIALS = 1

_NAMED = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token")
_LISTS = ("additional_special_tokens", "extra_special_tokens")


def _content(token: Any) -> str | None:
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) and token else None


def folder_specials(folder: str) -> set[str]:
    """The special tokens' strings of the tokenizer saved in ``folder`` (local or on an object
    store), read from its JSON files without transformers (3 s of imports in a dry run): the added
    tokens ``tokenizer.json`` marks special, those ``tokenizer_config.json`` marks so, and the
    special tokens named there and in ``special_tokens_map.json``. A superset of what a loaded
    tokenizer matches at worst, which only names the key for a few more outputs."""
    out: set[str] = set()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        try:
            doc = read_json(f"{folder.rstrip('/')}/{name}")
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        added = [*(doc.get("added_tokens") or []), *(doc.get("added_tokens_decoder") or {}).values()]
        out.update(_content(t) for t in added if isinstance(t, dict) and t.get("special"))
        out.update(_content(doc.get(key)) for key in _NAMED)
        for key in _LISTS:
            more = doc.get(key) or []
            out.update(_content(t) for t in (more.values() if isinstance(more, dict) else more))
    out.discard(None)
    return out


def holds_specials(texts: pa.Array | pa.ChunkedArray, specials: Iterable[str]) -> bool:
    """Whether a string of ``texts`` (strings, or lists of strings: words) contains one of
    ``specials``: one RE2 pass over the text, whatever the number of tokens (each a literal, every
    character but an ASCII letter or digit written ``\\x{..}``), with no copy of it. A first pass
    per first character (``[``) and then one per token over the strings holding it took 5.1 s and a
    copy of the text on 2M rows that all hold a ``[`` ("[1]" citations), this 0.12 s."""
    specials = sorted(set(specials))
    if pa.types.is_list(texts.type) or pa.types.is_large_list(texts.type):
        texts = pc.list_flatten(texts)
    if not specials or len(texts) == 0:
        return False
    pattern = "|".join("".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in s)
                       for s in specials)
    return pc.any(pc.match_substring_regex(texts, pattern)).as_py() is True


def typed_specials(specials: Iterable[str], texts: Iterable[pa.Array | pa.ChunkedArray] = (),
                   files: Iterable[str] = ()) -> dict[str, int]:
    """``{"typed_specials": TYPED_SPECIALS}`` when a string of ``texts`` or the raw text of a file
    of ``files`` (CoNLL-U: its comments too, a superset) contains one of ``specials``, else ``{}``:
    what an output's hash adds, so that only those outputs are made again."""
    from lrl.data.files import read_text

    specials = set(specials)
    if not specials:
        return {}
    found = any(holds_specials(t, specials) for t in texts) or \
        any(s in text for text in map(read_text, files) for s in specials)
    return {"typed_specials": TYPED_SPECIALS} if found else {}


__all__ = ["SPLIT", "TYPED_SPECIALS", "folder_specials", "holds_specials", "typed_specials"]
