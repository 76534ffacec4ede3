"""The saved tokenizer of a one-language tagger adds what lrl adds to every input: the language tag
after ``[CLS]`` and the language's token type id.

lrl encodes words itself (``lrl.train.align``, ``add_special_tokens=False``) and puts the tag and
the type ids in. Plain transformers users do not, and ``pipeline("token-classification")`` cannot
pass token type ids at all. So a tagger trained with language embeddings lost about half its F1
through the pipeline that its model card showed: a WikiANN ug tagger of ``jobs/multilingual.yaml``
scored 31.1 span F1 on ug dev through the card's pipeline snippet (tag put in front of the text),
and 56.4 through a plain ``pipeline(...)`` call once its tokenizer added the tag and type id itself
(lrl: 56.9 conlleval-style). Windows of a long text (the pipeline's ``stride``) each get the tag too,
but the words of those after the first keep type id 0: tokenizers gives a template's type ids to the
first window only (huggingface/tokenizers#1908), so the card says to split long texts.

Only a folder trained on one language gets this: a tokenizer cannot know which language a text of a
joint model is in. The folder's ``lrl_tagger.json`` says ``inputs_in_tokenizer`` so that its card
drops the manual tag from its examples.
"""

from __future__ import annotations

import json
from pathlib import Path


def _bert_style(p: Path) -> tuple[Path, Path, dict, str, str] | None:
    """(tokenizer_config.json, tokenizer.json, the config, cls token, sep token) of a tokenizer
    folder with ``[CLS]``/``[SEP]``-style specials; None for anything else."""
    config_file, tok_file = p / "tokenizer_config.json", p / "tokenizer.json"
    if not tok_file.is_file() or not config_file.is_file():
        return None
    config = json.loads(config_file.read_text(encoding="utf-8"))
    cls, sep = config.get("cls_token"), config.get("sep_token")
    if not isinstance(cls, str) or not isinstance(sep, str):  # not a BERT-style template
        return None
    return config_file, tok_file, config, cls, sep


def one_language_inputs(conventions: dict) -> tuple[str | None, int | None] | None:
    """(tag token, type id) when ``conventions`` (``lang_tags``/``lang_type_ids`` of one tagger)
    name exactly one language, else None."""
    tags: dict = conventions.get("lang_tags") or {}
    types: dict = conventions.get("lang_type_ids") or {}
    # ``langs``: every language, also one without a tag token (``lang_tags`` leaves it out)
    langs = set(conventions.get("langs") or ()) | set(tags) | set(types)
    if len(langs) != 1 or not (tags or types):
        return None
    (lang,) = langs
    return tags.get(lang), types.get(lang)


def add_inputs_to_tokenizer(folder: str | Path, tag: str | None, type_id: int | None) -> bool:
    """Rewrite the post-processor of ``folder``'s ``tokenizer.json`` to ``[CLS] tag $A [SEP]`` with
    every position of type ``type_id``, and list ``token_type_ids`` among the tokenizer's model
    inputs when a type id is set (transformers 5's fast tokenizer returns none otherwise). Returns
    False, changing nothing, for a tokenizer without ``[CLS]``/``[SEP]``-style specials, whose tag is
    no single token, or that transformers loads with a post-processor of its own (``_loads_as``)."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    p = Path(folder)
    found = _bert_style(p)
    if found is None:
        return False
    config_file, tok_file, config, cls, sep = found
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
    before = {f: f.read_bytes() for f in (tok_file, config_file)}
    backend.save(str(tok_file))
    if type_id is not None:
        config["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if _loads_as(p, [ids[x] for x in (cls, tag) if x], ids[sep], type_id):
        return True
    for f, data in before.items():
        f.write_bytes(data)
    return False


def remove_inputs_from_tokenizer(folder: str | Path) -> bool:
    """Undo ``add_inputs_to_tokenizer`` on a folder saved from a tokenizer loaded from a one-language
    folder: ``[CLS] $A [SEP]`` again, and the default model inputs. A tagger fine-tuned from such a
    folder, jointly or without the tag, kept its tokenizer adding the first language's tag and type
    id. True when it changed the folder."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    found = _bert_style(Path(folder))
    if found is None:
        return False
    config_file, tok_file, config, cls, sep = found
    post = json.loads(tok_file.read_text(encoding="utf-8")).get("post_processor") or {}
    if post.get("type") != "TemplateProcessing":
        return False
    single = post.get("single") or []
    specials = {x["SpecialToken"]["id"] for x in single if "SpecialToken" in x}
    types = {next(iter(x.values()))["type_id"] for x in single}
    if specials <= {cls, sep} and types <= {0}:
        return False  # not baked: a hub tokenizer's own template stays as it is
    backend = Tokenizer.from_file(str(tok_file))
    backend.post_processor = TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(x, backend.token_to_id(x)) for x in (cls, sep)])
    backend.save(str(tok_file))
    if config.pop("model_input_names", None) is not None:
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def _loads_as(folder: Path, head: list[int], sep: int, type_id: int | None) -> bool:
    """Whether ``AutoTokenizer`` loads ``folder``'s tokenizer with the template just written.
    transformers 5's ``BertTokenizer`` (the class a transformers 4 BERT or MiniLM folder names)
    builds BERT's own post-processor on load: a baked tag and type id were dropped without a word,
    while ``lrl_tagger.json`` said ``inputs_in_tokenizer`` and the card left them out."""
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)(["a"], is_split_into_words=True)
    ids = enc["input_ids"]
    types_ok = type_id is None or enc.get("token_type_ids") == [type_id] * len(ids)
    return ids[: len(head)] == head and ids[-1] == sep and types_ok


__all__ = ["one_language_inputs", "add_inputs_to_tokenizer", "remove_inputs_from_tokenizer"]
