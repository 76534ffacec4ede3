"""The "How to use" section of a tagger's model card: loading code, and what lrl adds around the
model at training and scoring time, which plain transformers users must add themselves.

- The language tag and the language's token type id. A one-language folder's tokenizer adds them
  itself (``lrl.train.tagger_inputs``, ``inputs_in_tokenizer`` in ``lrl_tagger.json``). Cards of
  other folders tell users to add them.
- A CRF head, which transformers does not load: such a card leads with lrl's own decoding.
"""

from __future__ import annotations

from typing import Any


def how_to_use(tagger: dict[str, Any], task: str = "ner") -> list[str]:
    """Loading code, plus what lrl adds around the model at training and scoring time. Without the
    language tag a tagged model lost half its F1 through plain transformers (WikiANN ug dev: 17.6
    instead of lrl's 35.2), so the card must say it."""
    tags: dict[str, str] = tagger.get("lang_tags") or {}
    types: dict[str, int] = tagger.get("lang_type_ids") or {}
    built_in = bool(tagger.get("inputs_in_tokenizer"))
    max_length = int(tagger.get("max_length") or 128)
    out: list[str] = []
    if tagger.get("head") == "crf":
        out += _crf_use(sorted(set(tags) | set(types)))
    out += ["```python", "from transformers import AutoModelForTokenClassification, AutoTokenizer",
            "tok = AutoTokenizer.from_pretrained(PATH)",
            "model = AutoModelForTokenClassification.from_pretrained(PATH)  # safetensors"]
    if tags and not built_in:
        lang, tag = sorted(tags.items())[0]
        out.append(f'words = ["{tag}", *words]  # {lang}: the language tag comes first, as in training')
    out.append('enc = tok(words, is_split_into_words=True, return_tensors="pt")')
    if built_in:
        out.append(f"# the tokenizer puts in what training did: {_built_in_what(tags, types)}")
    out += ["# one label per word: the prediction at the first piece of each word (enc.word_ids())",
            # lrl cuts such a sentence at word boundaries, each chunk with [CLS], the tag and [SEP];
            # fed whole, the model sees positions it never trained on, or fails past its position table.
            f"# more than {max_length} pieces: split the words into runs that fit and encode each run as above", "```", ""]
    # built in: the words of a long text's later windows get type id 0 (tokenizers#1908), wrong for any other id
    late = max(types.values(), default=0) if built_in else 0
    out += _pipeline_use({} if built_in else tags, max_length, task, late)
    if tags and not built_in:
        listed = ", ".join(f'"{t}" ({lang})' for lang, t in sorted(tags.items()))
        out += [f"The model was trained with a language tag token right after `[CLS]`: {listed}. Put it before "
                "the words (and skip its prediction); without it the scores above are not reached.", ""]
    if types and not built_in:
        listed = ", ".join(f"{lang}: {i}" for lang, i in sorted(types.items()))
        out += [f"The encoder has language embeddings: pass `token_type_ids` filled with the language's id ({listed}). "
                "A pipeline cannot pass them.", ""]
    return out


def _built_in_what(tags: dict[str, str], types: dict[str, int]) -> str:
    parts = [f"the language tag {t} after [CLS]" for t in tags.values()]
    parts += [f"token type id {i} on every position (the language embedding)" for i in types.values()]
    return " and ".join(parts) or "[CLS] and [SEP]"


def _crf_use(langs: list[str]) -> list[str]:
    """A CRF head's tags come from Viterbi over its transitions; transformers takes an argmax over
    the emission scores, which are trained to be read with the transitions: a 1-epoch WikiANN ug
    tagger with a CRF scored 16.6 span F1 on ug dev through the pipeline (nearly every word an
    ``I-`` tag) against 69.1 with Viterbi."""
    return ["The model has a CRF head (`crf.safetensors`), which transformers does not load. Decode with lrl, as the "
            "scores above were:", "", "```python",
            "from lrl.evaluate.predict import predict_tags",
            "from lrl.train.finetune_model import Tagger", "",
            "tagger = Tagger.load(PATH)",
            f"tags, _ = predict_tags(tagger, [words], langs=[{langs[0]!r}])  # lists of words in, one tag per word out"
            if langs else "tags, _ = predict_tags(tagger, [words], langs=None)  # lists of words in, one tag per word out",
            "```", "",
            "Transformers alone (below) takes an argmax over the logits, which ignores the CRF's transitions and "
            "scores far below the numbers above (a WikiANN Uyghur tagger after one epoch: 16.6 span F1 on dev against 69.1 with Viterbi).",
            ""]


def _pipeline_use(tags: dict[str, str], max_length: int, task: str = "ner", late_type: int = 0) -> list[str]:
    """The ``pipeline`` call that matches training. Only each word's first piece carries a label in
    training, so the default-looking ``aggregation_strategy="simple"`` also votes with pieces the
    head never learned: on WikiANN ug dev a tiny model scored 52.5 span F1 through it, 66.1 with
    ``"first"`` (lrl: 70.1). ``stride`` makes the pipeline chunk texts longer than the model's
    ``max_length`` pieces instead of cutting them off. ``tags``: the tags the user must put in
    (none where the tokenizer adds its own). ``late_type``: the token type id the tokenizer puts
    in, which the words of the windows after the first do not get (tokenizers applies a template's
    type ids to the first window only, huggingface/tokenizers#1908): 0 where that changes nothing."""
    stride = max(1, max_length // 4)
    # A token tagger's "entities" are its words, each with its tag as entity_group (B-X starts a
    # new group, so neighbouring words of one tag stay apart): "entity spans" misdescribed them.
    name, what = ("ner", "entity spans") if task == "ner" else ("tagger", "one item per word, its tag as `entity_group`")
    out = [f"Or with a pipeline (text in, {what} with character offsets out):", "", "```python",
           "import unicodedata", "from transformers import pipeline", "",
           f'{name} = pipeline("token-classification", model=PATH, aggregation_strategy="first", stride={stride})',
           'text = unicodedata.normalize("NFC", text)  # composed accents: see below']
    if tags:
        lang, tag = sorted(tags.items())[0]
        out += [f'prefix = "{tag} "  # {lang}', "spans = [dict(e, start=e[\"start\"] - len(prefix), end=e[\"end\"] - len(prefix))",
                f"         for e in {name}(prefix + text) if e[\"start\"] >= len(prefix)]  # the tag gets a label too: drop it"]
    else:
        out.append(f"spans = {name}(text)")
    out += ["```", "", 'Use `aggregation_strategy="first"`: the model learned a label only on the first piece of each '
            'word, and `"simple"` also takes the other pieces\' untrained predictions (on WikiANN Uyghur dev this '
            "cost about 14 points of span F1). `stride` splits long texts into overlapping windows instead of "
            "truncating them.", ""]
    out += ["Normalize the text to NFC first: the pipeline tells a word's first piece from the others by comparing "
            "each piece's length with its span of the text, and the tokenizer composes decomposed accents, so in "
            "text written in NFD (tone marks apart from their letters, as in 5% of the words of FLORES Yoruba) "
            "words were glued to the word before them (a WikiANN Yoruba tagger: span F1 21.1 through the pipeline on "
            "NFC text, 3.2 on the same text in NFD). The offsets then index the NFC text.", ""]
    # Measured with a tiny model on WikiANN ug dev (200 sentences, 12 over max_length pieces):
    # the pipeline's words agreed with lrl's on every short sentence (1390 of 1390, once a lone
    # I-X is read as an entity) and on 555 of 566 words of the long ones; span F1 63.2 vs 68.2.
    differs = ("The pipeline's entities can differ from the scores above: it makes an entity of an "
               "`I-X` that follows no `X`, which strict IOB2 scoring does not count (on WikiANN Uyghur dev this "
               "alone cost a tiny model 4.6 points of span F1)") if task == "ner" else (
        "The pipeline's words can differ from the scored ones: it splits the text with the tokenizer's own "
        "rules (punctuation apart), not as the training data was tokenized (for the scores above pass the "
        "data's words, as in the first example)")
    if tags:
        differs += (", and the windows after the first of a long text lack the language tag. For the scores above "
                    "split long texts into sentences yourself and prefix each.")
    elif late_type:
        differs += (f", and in the windows after the first of a long text the words get token type id 0, not the "
                    f"language's {late_type} (tokenizers gives the template's type ids to the first window only: "
                    "huggingface/tokenizers#1908). For the scores above split long texts into sentences yourself.")
    else:
        differs += "."
    out += [differs, ""]
    return out


__all__ = ["how_to_use"]
