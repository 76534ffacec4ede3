"""Token-level tagging (POS) through the NER path: ``data.ner`` with ``scheme: tokens`` reads each
tag X as the one-token span B-X (CoNLL-U from UD Uyghur, CoNLL, JSONL, Parquet, Hugging Face),
and a tiny tagger fine-tuned on a ud/ug slice scores span F1 = token accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrl.config import ConfigError
from lrl.data.config import NerSource
from lrl.data.files import InputError
from lrl.data.readers import infer_labels, read_ner
from lrl.data.token_tags import token_spans

UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X"}


def _tokens(**kw) -> NerSource:
    return NerSource(**{"lang": "ug", "scheme": "tokens", **kw})


@pytest.mark.parametrize("column, first", [("upos", ["NOUN", "NUM", "NOUN", "PUNCT"]), ("xpos", ["N", "M", "N", "Y"])])
def test_reads_ud_uyghur_train_as_one_token_spans(data_root, column, first):
    from lrl.data.conllu import read_conllu

    res = read_ner(_tokens(path="ud/ug/train.conllu", column=column), str(data_root))
    sents = read_conllu(str(data_root / "ud/ug/train.conllu"))
    rows = res.table.to_pylist()
    assert len(rows) == len(sents) == 1656 and res.rejects.num_rows == 0
    assert [r["id"] for r in rows[:2]] == ["ug:train:0", "ug:train:1"]  # made ids, as for CoNLL
    assert rows[0]["tags"][:4] == [f"B-{t}" for t in first]
    assert all(r["tokens"] == s.words and r["tags"] == [f"B-{t}" for t in s.tags(column)]
               for r, s in zip(rows, sents))
    labels = infer_labels([res.table])
    if column == "upos":
        assert {"NOUN", "VERB", "PUNCT"} <= set(labels) <= UPOS
    # format: conllu named explicitly reads the same rows.
    same = read_ner(_tokens(path="ud/ug/train.conllu", format="conllu", column=column), str(data_root))
    assert same.table.equals(res.table)


def test_conllu_rejects_name_their_line_and_labels_apply_to_the_pos_tag(data_root, tmp_path):
    blocks = (data_root / "ud/ug/dev.conllu").read_text(encoding="utf-8").split("\n\n")[:3]
    path = tmp_path / "d.conllu"
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    first_words = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                   if line.startswith("1\t")]  # each sentence's first word line
    # data.labels names the POS tags: a sentence with another tag is an "unknown label" reject.
    res = read_ner(_tokens(path=str(path), split="dev"), None, labels=["ADJ", "AUX", "NOUN", "NUM", "PRON", "PUNCT", "VERB"])
    rej = res.rejects.to_pylist()
    assert res.table.column("id").to_pylist() == ["ug:dev:0"] and len(rej) == 2  # CCONJ / SCONJ not allowed
    # tag 0: the token's own line is the sentence's first word line
    assert [r["reason"] for r in rej] == [f"unknown label: tag 0 'B-{t}': unknown label '{t}' (line {r['line']})"
                                          for t, r in zip(["CCONJ", "SCONJ"], rej)]
    assert {r["line"] for r in rej} <= set(first_words) and len(first_words) == 3
    assert [r["id"] for r in rej] == ["ug:dev:1", "ug:dev:2"]
    whole = read_ner(_tokens(path=str(path), split="dev"), None)
    assert whole.table.num_rows == 3 and whole.rejects.num_rows == 0
    # A malformed line stays an InputError with file:line (read_conllu).
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tword\tword\tNOUN\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.conllu:1: expected 10 tab-separated columns"):
        read_ner(_tokens(path=str(bad)), None)


def test_conllu_under_iob2_is_refused_with_a_pointer_to_scheme_tokens(data_root, tmp_path):
    # A .conllu path: at config load (a dev split was read only by finetune, after generate,
    # the tokenizer and pretraining); a folder of them: as the reader meets the files.
    with pytest.raises(ValueError, match=r"'ud/ug/train.conllu' \(a .conllu path\) is CoNLL-U.*needs scheme: tokens"):
        NerSource(path="ud/ug/train.conllu", lang="ug")
    (tmp_path / "a.conllu").write_text((data_root / "ud/ug/dev.conllu").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(InputError, match="CoNLL-U has no NER tag column.*set scheme: tokens"):
        read_ner(NerSource(path=str(tmp_path), lang="ug"), None)


def test_config_checks_scheme_column_and_keeps_iob2_dumps(data_root, tmp_path):
    from lrl.generate.stage import stage_output
    from lrl.job import load_job

    with pytest.raises(ValueError, match="format conllu .* needs scheme: tokens"):
        NerSource(path="a.conllu", lang="ug", format="conllu")
    with pytest.raises(ValueError, match="column 'xpos' applies to CoNLL-U input only"):
        NerSource(path="a.conll", lang="ug", scheme="tokens", column="xpos")
    with pytest.raises(ConfigError, match="column"):
        load_job(None, ["data.ner=[{path: a.jsonl, lang: ug, format: jsonl, scheme: tokens, column: xpos}]"])
    assert NerSource(path="ud/ug/train.conllu.gz", lang="ug", scheme="tokens", column="xpos").column == "xpos"
    # The generate output folder hashes the dumped data section: an IOB2 source dumps exactly the
    # keys it had before these fields, so existing jobs keep finding their outputs.
    assert list(NerSource(path="a", lang="ug").model_dump(mode="json")) == ["path", "lang", "format", "split",
                                                                            "hf_config"]
    conll = tmp_path / "a.conll"
    conll.write_text("Kano\tNOUN\n", encoding="utf-8")
    over = [f"output.root={tmp_path}", "augment.ops=[mention]"]
    iob2 = stage_output(load_job(None, [*over, f"data.ner=[{{path: {conll}, lang: ug}}]"])).hash
    toks = stage_output(load_job(None, [*over, f"data.ner=[{{path: {conll}, lang: ug, scheme: tokens}}]"])).hash
    assert iob2 != toks


def test_token_spans_maps_tags_and_refuses_iob2():
    assert token_spans(["NOUN", "O", "_", "VERB"]) == (["B-NOUN", "O", "O", "B-VERB"], None)
    spans, why = token_spans(["NOUN", "B-PER", "I-PER"])
    assert spans is None and why.startswith("IOB2 tag: tag 1 'B-PER'") and "scheme: iob2" in why
    assert token_spans(["I-LOC"])[1].startswith("IOB2 tag: tag 0")
    assert token_spans(["NOUN", ""])[1] == "empty tag: tag 1 is ''"


POS_CONLL = ("#Kano\tPROPN\nga\tVERB\n.\tPUNCT\n\n"  # a hashtag opening a sentence is a token
             "# sent_id = 2\nDakar\tPROPN\nnekk\tVERB\nfoo\t_\n\n"  # a comment line; UD's no-tag _
             "Ali\tB-PER\nDem\tO\n\n"  # IOB2 in a tokens source: the wrong scheme, a reject
             "bi\tDET\nkër\tNOUN\n")


def test_conll_pos_file_reads_under_tokens_and_is_refused_under_iob2(tmp_path):
    path = tmp_path / "pos.conll"
    path.write_text(POS_CONLL, encoding="utf-8")
    res = read_ner(_tokens(path=str(path)), None)
    rows = res.table.to_pylist()
    assert [r["tokens"] for r in rows] == [["#Kano", "ga", "."], ["Dakar", "nekk", "foo"], ["bi", "kër"]]
    assert [r["tags"] for r in rows] == [["B-PROPN", "B-VERB", "B-PUNCT"], ["B-PROPN", "B-VERB", "O"],
                                         ["B-DET", "B-NOUN"]]
    assert [r["id"] for r in rows] == ["ug:train:0", "ug:train:1", "ug:train:3"]
    (rej,) = res.rejects.to_pylist()
    assert rej["id"] == "ug:train:2" and rej["line"] == 10 and rej["reason"].startswith("IOB2 tag: tag 0 'B-PER'")
    assert res.reject_reasons == {"IOB2 tag": 1}
    with pytest.raises(InputError, match="IOB2 tag"):
        read_ner(_tokens(path=str(path)), None, policy="error")
    # Under the default scheme the same file is what it was before: POS tags are invalid BIO.
    iob2 = read_ner(NerSource(path=str(path), lang="ug"), None)
    assert iob2.table.num_rows == 1 and iob2.reject_reasons == {"invalid BIO": 3}
    first = iob2.rejects.to_pylist()[0]  # the token's own line: the sentence's first here
    assert first["reason"] == f"invalid BIO: tag 0 'VERB' is not O, B-X or I-X (line {first['line']})"


def test_jsonl_parquet_and_hf_honour_the_scheme(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    from lrl.data.schema import ner_table

    sents = [{"tokens": ["bi", "kër"], "tags": ["DET", "NOUN"]}, {"tokens": ["Ali"], "tags": ["B-PER"]}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(s) for s in sents) + "\n", encoding="utf-8")
    pq.write_table(ner_table([{"id": f"r{i}", "lang": "wo", **s} for i, s in enumerate(sents)]), tmp_path / "p.parquet")
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["B-PER", "DET", "NOUN"]))})
    datasets.Dataset.from_dict({"tokens": [s["tokens"] for s in sents], "ner_tags": [[1, 2], [0]]},
                               features=feats).save_to_disk(str(tmp_path / "hf"))
    for name, fmt in (("p.jsonl", "auto"), ("p.parquet", "auto"), ("hf", "hf")):
        res = read_ner(NerSource(path=str(tmp_path / name), lang="wo", format=fmt, scheme="tokens"), None)
        assert res.table.column("tags").to_pylist() == [["B-DET", "B-NOUN"]], name
        assert res.reject_reasons == {"IOB2 tag": 1}, name


def test_span_f1_of_one_token_spans_is_accuracy_when_every_prediction_is_a_span():
    """The claim of the ``scheme`` docstring, on hand-made tags: all-B predictions give F1 =
    accuracy; an O or I- prediction is no span and F1 = 2 x right / (tokens + predicted spans)."""
    from lrl.evaluate.metrics import span_scores

    gold = [["B-NOUN", "B-VERB", "B-PUNCT"], ["B-PRON", "B-NOUN"]]
    pred = [["B-NOUN", "B-NOUN", "B-PUNCT"], ["B-PRON", "B-VERB"]]
    assert span_scores(gold, pred)["f1"] == pytest.approx(3 / 5)  # 3 of 5 tokens right
    pred = [["B-NOUN", "O", "B-PUNCT"], ["B-PRON", "I-PRON"]]  # 2 right spans of 3 predicted
    assert span_scores(gold, pred)["f1"] == pytest.approx(2 * 2 / (5 + 3))  # accuracy would be 3/5


def _ud_slice(data_root: Path, folder: Path, split: str, n: int) -> Path:
    blocks = (data_root / f"ud/ug/{split}.conllu").read_text(encoding="utf-8").split("\n\n")[:n]
    out = folder / f"{split}.conllu"
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out


def test_pos_tagger_fine_tunes_on_ud_uyghur_and_f1_is_token_accuracy(data_root, tmp_path, ray_session):
    """200 train / 50 dev sentences of UD Uyghur (UPOS), a tiny from-scratch encoder, the finetune
    and evaluate stages: a per-type table keyed by UPOS tags, and dev F1 = accuracy recomputed from
    the saved predictions (observed: 0.4368 over 957 dev words after 30 steps)."""
    pytest.importorskip("transformers")
    from lrl.evaluate.command import run_evaluate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    train, dev = _ud_slice(data_root, tmp_path, "train", 200), _ud_slice(data_root, tmp_path, "dev", 50)
    cfg = load_job(None, [
        f"data.ner=[{{path: {train}, lang: ug, scheme: tokens}}, {{path: {dev}, lang: ug, split: dev, scheme: tokens}}]",
        f"output.root={tmp_path / 'runs'}", "evaluate.seeds=[0]",
        "finetune={model: 'preset:tiny', max_steps: 30, eval_every: 30, batch_size: 16, lr: 0.003, max_length: 64,"
        " num_cpus: 1}"])
    ft = Path(run_finetune(StageContext(cfg)))
    res = json.loads((ft / "results.json").read_text())
    # One label B-X per UPOS tag of the data: no O (every UD word has a tag) and no I-X, which no
    # row teaches (the model had 31 labels for 15 tags). The saved model's id2label is the same.
    assert all(lab.startswith("B-") for lab in res["labels"]) and {lab[2:] for lab in res["labels"]} <= UPOS
    saved = json.loads((ft / "models" / "ug" / "config.json").read_text())
    assert [saved["id2label"][str(i)] for i in range(len(saved["id2label"]))] == res["labels"]
    group = res["groups"]["ug"]
    per_type = group["runs"][0]["per_type"]
    assert {"NOUN", "VERB", "PUNCT"} <= set(per_type) <= UPOS
    assert set(group["per_type"]) == set(per_type)
    # The card describes a tagger, not named entities (its name, task, metric and score table).
    card = (ft / "models" / "ug" / "README.md").read_text(encoding="utf-8")
    assert "# lrl-ug-tagger" in card and "Token F1 in percent" in card and "| language | tag |" in card
    assert "Named-entity" not in card and "entity type" not in card and "silver-standard" not in card
    from lrl.evaluate.report import build_html  # and so does the report

    page = build_html(cfg.report, {"finetune": str(ft)})
    assert "Dev token F1 per tag" in page and "token accuracy when every token" in page and "per entity type" not in page
    ev = Path(run_evaluate(StageContext(cfg, {"finetune": str(ft)})))
    dev_scores = json.loads((ev / "metrics.json").read_text())["models"]["ug"]["dev"]
    gold, pred = [], []
    for block in (ev / "predictions/ug/dev.conll").read_text(encoding="utf-8").split("\n\n"):
        for line in block.strip().splitlines()[1:]:  # after the "# id = ..." line
            _, g, p = line.split("\t")
            gold.append(g)
            pred.append(p)
    assert len(gold) == dev_scores["support"] == sum(dev_scores["per_type"][t]["support"] for t in dev_scores["per_type"])
    assert all(g.startswith("B-") for g in gold)  # every UD word has a UPOS tag
    assert all(p.startswith("B-") for p in pred)  # every prediction a span: the docstring's condition
    accuracy = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    assert 0.0 < accuracy < 1.0
    assert dev_scores["f1"] == pytest.approx(accuracy, abs=1e-12)
    assert dev_scores["precision"] == pytest.approx(dev_scores["recall"], abs=1e-12)
    # The report with the evaluate stage: tags, not entity types, in its headings and notes
    page = build_html(cfg.report, {"finetune": str(ft), "evaluate": str(ev)})
    assert "F1 per language and tag</h2>" in page and "Tag confusions</h2>" in page and "gold tag (rows)" in page
    assert "one model per row, token F1 / P / R" in page and "entity type" not in page and "Entity" not in page
    assert group["summary"]["f1"]["mean"] == pytest.approx(accuracy, abs=1e-12)  # the finetune stage's dev F1
    # ``lrl evaluate --model M --data dev.conllu --lang ug`` reads the treebank as tokens too (it
    # quarantined every sentence as invalid IOB2), and gives the stage's figure; the column names
    # the output folder only when it is not the default.
    from lrl.evaluate.command import evaluate_files

    files = Path(evaluate_files(str(ft / "models" / "ug"), str(dev), "ug", str(tmp_path / "cli")))
    cli = json.loads((files / "metrics.json").read_text())
    assert cli["rejected_rows"] == 0
    assert cli["models"]["ug"]["data"]["f1"] == pytest.approx(dev_scores["f1"], abs=1e-12)
    xpos = evaluate_files(str(ft / "models" / "ug"), str(dev), "ug", str(tmp_path / "cli"), column="xpos")
    assert Path(xpos) != files


def test_conllu_column_without_any_tag_is_an_error_not_a_model_of_o(tmp_path):
    """A treebank whose XPOS is ``_`` throughout read as all-``O`` rows: fine-tuning then trained the
    single label O (loss 0.0, dev F1 0.0) and nothing said the column was empty. Partly empty
    columns stay allowed (``_`` is the documented no-tag)."""
    body = "\t".join(["1", "men", "men", "PRON", "_", "_", "0", "root", "_", "_"]) + "\n\n"
    path = tmp_path / "noxpos.conllu"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=r"noxpos.conllu: column xpos is '_' \(no tag\) on every word.*other column \(upos\)"):
        read_ner(_tokens(path=str(path), column="xpos"), None)
    assert read_ner(_tokens(path=str(path)), None).table.column("tags").to_pylist() == [["B-PRON"]]
