"""The tokenizer stage does not train on pretraining's held-out slice (``lrl.model.text_split``).

It used to hold out the last lines read instead, and so learned pieces from the documents that
pretraining then scored as unseen text."""

import json

import pyarrow as pa

from lrl.data.sampling import heldout_split
from lrl.model.text_split import ON_TRAINING, tail_split, tokenizer_text

WORDS = ["bir", "ikki", "uch", "tort", "besh", "alti", "yetti", "sekkiz", "toqquz", "on"]
MARK = "zorqulvatim"  # a word only the held-out documents write


def _corpus(tmp_path, held_docs: set[str] = frozenset()):
    lines = []
    for d in range(40):
        lines.append(f"# doc d{d:02d}")
        for i in range(5):
            words = [WORDS[(d + i + k) % len(WORDS)] for k in range(6)]
            if f"d{d:02d}" in held_docs:
                words += [MARK] * 4
            lines.append(" ".join(words) + f" {d} {i}")
    (tmp_path / "ug.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cfg(tmp_path, *overrides):
    from lrl.job import load_job

    return load_job(None, [f"data.root={tmp_path}", f"output.root={tmp_path / 'runs'}",
                           "data.text=[{path: ug.txt, lang: ug}]", "tokenizer.vocab_size=200",
                           "tokenizer.min_frequency=1", "tokenizer.eval_lines=7", *overrides])


def _held_docs(cfg) -> set[str]:
    from lrl.train.pretrain_data import load_text

    table, _ = load_text(cfg)
    _, held = heldout_split(table, cfg.pretrain.heldout_fraction)
    return set(held.column("doc").to_pylist())


def test_the_tokenizer_never_learns_from_pretrainings_held_out_documents(tmp_path):
    from transformers import AutoTokenizer

    from lrl.model.command import run_tokenizer
    from lrl.pipeline.stage import StageContext

    _corpus(tmp_path)
    cfg = _cfg(tmp_path, "seed=5", "pretrain.heldout_fraction=0.1")
    docs = _held_docs(cfg)
    # the slice is spread over the file, not its tail, and does not depend on the job's seed
    assert len(docs) == 4 and docs != {"d36", "d37", "d38", "d39"}
    assert _held_docs(_cfg(tmp_path, "pretrain.heldout_fraction=0.1")) == docs
    _corpus(tmp_path, docs)  # the same documents, now the only ones to write MARK
    assert _held_docs(cfg) == docs
    path = run_tokenizer(StageContext(cfg))
    tok = AutoTokenizer.from_pretrained(path)
    assert MARK not in tok.get_vocab() and tok.tokenize(MARK) != [MARK]  # its letters unseen: [UNK]
    stats = json.loads((tmp_path / "runs" / path.rsplit("/", 1)[1] / "stats.json").read_text())["langs"]["ug"]
    # scored on the first held-out lines: each writes MARK
    assert stats["eval_lines"] == 7 and stats["pretrain_heldout_lines"] == 20 and stats["train_lines"] == 180
    assert "note" not in stats
    from lrl.model.command import summary

    assert "scored on 7 ug lines that pretraining holds out" in summary(path, {"before": "x", "langs": {"ug": stats}})
    # the held-out fraction shapes the tokenizer, so it names the output folder
    assert run_tokenizer(StageContext(_cfg(tmp_path, "seed=5", "pretrain.heldout_fraction=0.2"))) != path


def test_lines_of_the_split(tmp_path):
    """Training lines capped by max_lines_per_lang; the statistics on the held-out slice; without a
    slice, the last lines read (as many as eval_lines); eval_lines=0 scores training lines."""
    _corpus(tmp_path)
    text = tokenizer_text(_cfg(tmp_path, "pretrain.heldout_fraction=0.1", "tokenizer.max_lines_per_lang=50"), None)
    assert len(text.train["ug"]) == 50 and len(text.held["ug"]) == 7 and not text.note
    assert not set(text.held["ug"]) & set(text.train["ug"])
    text = tokenizer_text(_cfg(tmp_path, "pretrain.heldout_fraction=0", "tokenizer.max_lines_per_lang=50"), None)
    assert text.pretrain_heldout == {} and len(text.held["ug"]) == 7 and len(text.train["ug"]) == 50
    assert text.held["ug"][-1].endswith(" 11 1")  # the tail of the first 57 lines read
    text = tokenizer_text(_cfg(tmp_path, "pretrain.heldout_fraction=0.1", "tokenizer.eval_lines=0"), None)
    assert text.held["ug"] == text.train["ug"] and len(text.train["ug"]) == 180 and text.note["ug"] == ON_TRAINING


def test_tail_lines_never_repeat_training_lines():
    """A held-out line that also occurs in training is training text: scored, it would flatter the
    tokenizer that learned from it. It goes to training; nothing is lost."""
    lines = [f"line {i}" for i in range(16)] + ["stub", "line 3", "fresh a", "stub"]
    train, held, note = tail_split({"ug": lines}, eval_lines=4)
    assert held["ug"] == ["stub", "fresh a", "stub"] and "line 3" in train["ug"]
    assert not set(held["ug"]) & set(train["ug"])
    assert sorted(train["ug"] + held["ug"]) == sorted(lines) and not note
    # nothing left to hold out: the statistics are on training lines, and say so
    train, held, note = tail_split({"wo": ["a", "b", "a"]}, eval_lines=4)
    assert held["wo"] == train["wo"] == ["a", "b", "a"] and "training lines" in note["wo"]
    train, held, note = tail_split({"wo": ["x"] * 10}, eval_lines=2)
    assert held["wo"] == train["wo"] and len(train["wo"]) == 10 and note["wo"]


def test_the_slice_does_not_depend_on_the_form_titles_are_read_in():
    """``data.unicode: none`` reads titles as written; the tokenizer's output does not depend on
    that setting (it NFKCs), so both forms must hold out the same documents."""
    import unicodedata

    titles = [f"Ile\u0301 {i}" for i in range(40)]  # decomposed é
    table = pa.table({"text": [f"line {i}" for i in range(40)], "lang": ["yo"] * 40, "doc": titles})
    composed = table.set_column(2, "doc", pa.array([unicodedata.normalize("NFC", t) for t in titles]))
    assert heldout_split(table, 0.1)[1]["text"] == heldout_split(composed, 0.1)[1]["text"]


def test_run_from_pretrain_names_a_changed_heldout_fraction():
    """``lrl run --from pretrain`` reuses the recorded tokenizer: a changed held-out fraction shaped
    it, so the stale-settings warning names it."""
    from lrl.job import load_job
    from lrl.pipeline.settings_drift import changed_settings, flat_config

    base = ["data.text=[{path: mono/wo.txt, lang: wo}]", "pipeline.stages=[tokenizer, pretrain]"]
    state = {"stages": {"tokenizer": {"config": "c0"}}, "configs": {"c0": flat_config(load_job(None, base))}}
    now = load_job(None, [*base, "pretrain.heldout_fraction=0.2"])
    assert changed_settings(state, now, ["tokenizer"]) == {"pretrain.heldout_fraction": (0.05, 0.2)}


def test_generate_text_loses_the_same_rows_as_pretraining(tmp_path):
    """Upstream generate text (rows without a doc keyed by their row index, two files of one
    language): the tokenizer trains on pretraining's training rows, in their order, and no other."""
    import pyarrow.compute as pc

    from lrl.data.schema import TEXT_SCHEMA
    from lrl.generate.write import write_text
    from lrl.train.pretrain_data import load_text

    rows = [{"id": f"{lang}:{i}", "lang": lang, "text": f"{lang} line {i}", "doc": None if i % 2 else f"d{i // 10}",
             "source": "x", "op": "orig", "parent_id": None, "seed": None} for lang in ("ug", "wo") for i in range(200)]
    table = pa.Table.from_pylist(rows, schema=TEXT_SCHEMA)
    write_text([table.slice(0, 250), table.slice(250)], str(tmp_path / "gen"))
    cfg = _cfg(tmp_path, "pretrain.heldout_fraction=0.1", "tokenizer.max_lines_per_lang=null")
    rest, held = heldout_split(load_text(cfg, str(tmp_path / "gen"))[0], 0.1)
    text = tokenizer_text(cfg, str(tmp_path / "gen"))
    for lang in ("ug", "wo"):
        assert text.train[lang] == [t for t, x in zip(rest["text"].to_pylist(), rest["lang"].to_pylist()) if x == lang]
        assert text.pretrain_heldout[lang] == held.filter(pc.equal(held["lang"], lang)).num_rows >= 20


def test_the_summary_says_how_many_words_were_unknown_before_extension():
    """An extended MiniLM's line read "pieces/word 2.93 -> 2.99", a loss at first sight, where 62% of
    the words had been [UNK] (one piece each) before: the line now says both (a user's audit)."""
    from lrl.model.command import summary

    def side(unk, words, ppw):
        return {"unk_rate": unk, "unk_word_rate": words, "pieces_per_word": ppw, "pieces": 1, "words": 1}

    stats = {"before": "minilm", "langs": {"ug": {"before": side(0.2129, 0.616, 2.93),
                                                   "after": side(0.0007, 0.0015, 2.99)},
                                            "wo": {"before": side(0.0, 0.0, 3.99), "after": side(0.0003, 0.0002, 1.8)}}}
    lines = summary("runs/tokenizer-x", stats).splitlines()
    assert "  ug: unk 21.29% -> 0.07% (words with one: 61.60% -> 0.15%), pieces/word 2.93 -> 2.99 " \
           "(an [UNK] counts as one piece)" in lines
    assert "  wo: unk 0.00% -> 0.03% (words with one: 0.00% -> 0.02%), pieces/word 3.99 -> 1.80" in lines
