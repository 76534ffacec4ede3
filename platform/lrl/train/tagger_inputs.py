"""The saved tokenizer of a one-language tagger adds what lrl adds to every input: the language tag
after ``[CLS]`` and the language's token type id.

lrl encodes words itself (``lrl.train.align``, ``add_special_tokens=False``) and puts the tag and
the type ids in. Plain transformers users do not, and ``pipeline("token-classification")`` cannot
pass token type ids at all. So a tagger trained with language embeddings lost about half its F1
through the pipeline that its model card showed: a WikiANN ug tagger of ``jobs/multilingual.yaml``
scored 31.1 span F1 on ug dev through the card's pipeline snippet (tag put in front of the text),
and 56.4 through a plain ``pipeline(...)`` call once its tokenizer added the tag and type id itself
(lrl: 56.9 conlleval-style). Windows of a long text (the pipeline's ``stride``) each get the tag too.

Only a folder trained on one language gets this: a tokenizer cannot know which language a text of a
joint model is in. The folder's ``lrl_tagger.json`` says ``inputs_in_tokenizer`` so that its card
drops the manual tag from its examples.
"""

from __future__ import annotations

import json
from pathlib import Path


def one_language_inputs(conventions: dict) -> tuple[str | None, int | None] | None:
    """(tag token, type id) when ``conventions`` (``lang_tags``/``lang_type_ids`` of one tagger)
    name exactly one language, else None."""
    tags: dict = conventions.get("lang_tags") or {}
    types: dict = conventions.get("lang_type_ids") or {}
    langs = set(tags) | set(types)
    if len(langs) != 1 or not (tags or types):
        return None
    (lang,) = langs
    return tags.get(lang), types.get(lang)


def add_inputs_to_tokenizer(folder: str | Path, tag: str | None, type_id: int | None) -> bool:
    """Rewrite the post-processor of ``folder``'s ``tokenizer.json`` to ``[CLS] tag $A [SEP]`` with
    every position of type ``type_id``, and list ``token_type_ids`` among the tokenizer's model
    inputs when a type id is set (transformers 5's fast tokenizer returns none otherwise). Returns
    False, changing nothing, for a tokenizer without ``[CLS]``/``[SEP]``-style specials or whose
    tag is no single token."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    p = Path(folder)
    config_file, tok_file = p / "tokenizer_config.json", p / "tokenizer.json"
    if not tok_file.is_file() or not config_file.is_file():
        return False
    config = json.loads(config_file.read_text(encoding="utf-8"))
    cls, sep = config.get("cls_token"), config.get("sep_token")
    if not isinstance(cls, str) or not isinstance(sep, str):  # not a BERT-style template
        return False
    backend = Tokenizer.from_file(str(tok_file))
    names = [x for x in (cls, tag, sep) if x]
    ids = {x: backend.token_to_id(x) for x in names}
    if any(v is None for v in ids.values()):
        return False
    t = type_id or 0
    head = " ".join(f"{x}:{t}" for x in (cls, tag) if x)
    backend.post_processor = TemplateProcessing(
        single=f"{head} $A:{t} {sep}:{t}", pair=f"{head} $A:{t} {sep}:{t} $B:{t} {sep}:{t}",
        special_tokens=[(x, ids[x]) for x in dict.fromkeys(names)])
    backend.save(str(tok_file))
    if type_id is not None:
        config["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


__all__ = ["one_language_inputs", "add_inputs_to_tokenizer"]
