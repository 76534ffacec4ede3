"""What ``lrl evaluate`` and the report say about inputs that look fine and are not: a model folder
without weights, rows in a language the model was not trained on, and which seed's model the
evaluate stage scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tagger_folder(tmp_path_factory) -> Path:
    """A scratch encoder (loads as a token classifier) whose ``lrl_tagger.json`` says it was trained on ug."""
    from lrl.train.finetune_scratch import build_scratch_encoder

    tmp = tmp_path_factory.mktemp("notes")
    rows = [["bir", "ikki"], ["salam", "dunya"], ["Dakar", "mooy", "péeyu"]]
    build_scratch_encoder(tmp / "model", rows, ["ug", "wo"], vocab_size=80, hidden=16, layers=1)
    cfg = json.loads((tmp / "model" / "config.json").read_text())
    labels = ["O", "B-LOC", "I-LOC"]
    cfg |= {"id2label": dict(enumerate(labels)), "label2id": {x: i for i, x in enumerate(labels)}}
    (tmp / "model" / "config.json").write_text(json.dumps(cfg))
    (tmp / "model" / "lrl_tagger.json").write_text(json.dumps({"head": "linear", "langs": ["ug"]}))
    (tmp / "data.conll").write_text("Dakar\tB-LOC\nmooy\tO\n\nsalam\tO\n", encoding="utf-8")
    return tmp


def test_a_model_folder_without_weights_is_one_line_not_a_traceback(tagger_folder, tmp_path, capsys):
    from lrl.cli import main

    bare = tmp_path / "copy"
    shutil.copytree(tagger_folder / "model", bare)
    (bare / "model.safetensors").unlink()
    args = ["evaluate", "--model", str(bare), "--data", str(tagger_folder / "data.conll"), "--lang", "ug",
            "--out", str(tmp_path / "runs")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{bare}: a model folder without weights (no model.safetensors)" in err and "Traceback" not in err
    # The same in a stage output's models/<name>/: not an OSError from transformers at the first model.
    (tmp_path / "ft" / "models").mkdir(parents=True)
    shutil.move(str(bare), tmp_path / "ft" / "models" / "ug")
    from lrl.data.files import InputError
    from lrl.evaluate.command import evaluate_files

    with pytest.raises(InputError, match="without weights"):
        evaluate_files(str(tmp_path / "ft"), str(tagger_folder / "data.conll"), "ug", str(tmp_path / "runs"))
    assert not list((tmp_path / "runs").glob("evaluate-*/metrics.json"))


def test_rows_in_a_language_the_model_was_not_trained_on_are_said(tagger_folder, tmp_path, capsys):
    """A ug model on wo data printed F1 0.0 and nothing else; ``--lang wo`` on ug data the same."""
    from lrl.evaluate.command import evaluate_files, print_scores

    path = evaluate_files(str(tagger_folder / "model"), str(tagger_folder / "data.conll"), "wo", str(tmp_path))
    metrics = json.loads((Path(path) / "metrics.json").read_text())
    assert metrics["models"]["model"]["data"]["untrained_langs"] == {"model": ["ug"], "rows": {"wo": 2}}
    capsys.readouterr()
    print_scores(path)
    out = capsys.readouterr().out
    assert "note: rows of wo (2 sentences) are in a language the model was not trained on (ug)" in out
    assert f"macro F1 {100 * metrics['models']['model']['data']['macro_f1']:.1f}  (2 sentences)" in out
    same = evaluate_files(str(tagger_folder / "model"), str(tagger_folder / "data.conll"), "ug", str(tmp_path))
    assert "untrained_langs" not in json.loads((Path(same) / "metrics.json").read_text())["models"]["model"]["data"]
    from lrl.evaluate.report import build_html
    from lrl.job import load_job

    page = build_html(load_job(None).report, {"evaluate": path})
    assert "Languages the model was not trained on: model [data]: rows of wo (2 sentences)" in page


def test_report_names_the_seed_of_the_saved_model(tmp_path):
    """"the seed kept as the best on dev", and no word of which seed that was (results.json has it)."""
    from lrl.evaluate.metrics import aggregate
    from lrl.evaluate.report import build_html
    from lrl.job import load_job

    groups = {}
    for lang, f1s, best in (("ug", [0.5, 0.6], 1), ("wo", [0.4, 0.3], 0)):
        runs = [{"seed": i, "dev_f1": f, "scores": {"precision": f, "recall": f, "f1": f}} for i, f in enumerate(f1s)]
        groups[lang] = {"summary": aggregate([r["scores"] for r in runs]), "runs": runs, "best_seed": best}
    (tmp_path / "results.json").write_text(json.dumps({"mode": "per_language", "seeds": [0, 1], "groups": groups}))
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "metrics.json").write_text(json.dumps({"models": {g: {"dev": {
        "f1": 0.6, "precision": 0.6, "recall": 0.6, "sentences": 3, "per_type": {}}} for g in groups}}))
    page = build_html(load_job(None).report, {"finetune": str(tmp_path), "evaluate": str(tmp_path / "ev")})
    assert "the seed kept as the best on dev (ug: seed 1; wo: seed 0)" in page


def test_a_model_without_iob2_labels_is_one_line_not_a_seqeval_traceback(tagger_folder, tmp_path, capsys):
    """``lrl evaluate --model <pretrain output>``: an encoder's labels LABEL_0, LABEL_1 were predicted
    on every sentence and then ended in seqeval's "Invalid token is found: LABEL_1" traceback."""
    from lrl.cli import main

    enc = tmp_path / "encoder"
    shutil.copytree(tagger_folder / "model", enc)
    cfg = json.loads((enc / "config.json").read_text())
    cfg |= {"id2label": {i: f"LABEL_{i}" for i in range(2)}, "label2id": {f"LABEL_{i}": i for i in range(2)}}
    (enc / "config.json").write_text(json.dumps(cfg))
    args = ["evaluate", "--model", str(enc), "--data", str(tagger_folder / "data.conll"), "--lang", "ug",
            "--out", str(tmp_path / "runs")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{enc}: labels LABEL_0, LABEL_1 are not IOB2 tags (O, B-X, I-X)" in err and "Traceback" not in err


def test_tune_best_table_shows_a_dash_not_none_for_a_missing_value(tmp_path):
    from lrl.evaluate.report import _tune_section
    from lrl.evaluate.report_data import tune_results

    (tmp_path / "trials.json").write_text(json.dumps([{"lang": "ug", "lr": 1e-3, "dev_f1": 0.5, "time_s": 1.0}]))
    (tmp_path / "best.json").write_text(json.dumps([{"lang": "ug", "lr": 1e-3, "dropout": 0.1, "dev_f1": 0.5},
                                                    {"lang": "wo", "errored": 3}]))
    text = _tune_section(tune_results(str(tmp_path)))
    assert "None" not in text and "<td>wo</td><td>—</td><td>—</td><td>—</td>" in text


def test_macro_f1_is_scored_and_shown_beside_the_micro_one(tmp_path):
    """Only the micro F1 was kept (seqeval's macro average was dropped): a rare type's collapse hid
    behind a frequent one's score, with no macro figure to recompute it against."""
    from lrl.evaluate.metrics import scores_by_lang
    from lrl.evaluate.report import build_html
    from lrl.job import load_job

    s = scores_by_lang([["B-PER", "I-PER", "O", "B-LOC"], ["B-PER"]], [["B-PER", "I-PER", "O", "O"], ["B-PER"]],
                       ["ug", "ug"])
    assert s["f1"] == pytest.approx(0.8) and s["macro_f1"] == pytest.approx(0.5)  # PER 1.0, LOC 0.0
    assert s["per_lang"]["ug"]["macro_f1"] == pytest.approx(0.5)
    (tmp_path / "metrics.json").write_text(json.dumps({"models": {"ug": {"dev": {**s, "sentences": 2}}}}))
    page = build_html(load_job(None).report, {"evaluate": str(tmp_path)})
    assert "<th>macro F1</th>" in page and "<td>ug</td><td>dev</td><td>80.0</td><td>100.0</td><td>66.7</td><td>50.0</td>" in page


def test_every_column_of_the_oversampling_table_is_named():
    from lrl.evaluate.report_generate import generate_section

    text = generate_section({"input_rows": 1, "output_rows": 2, "rows_per_op": {"orig": 2}, "oversample": {
        "rows_before": {"ug": 1}, "targets": {"ug": 3}, "rows_written": {"ug": 2}, "missed_targets": {"ug": 3}}})
    assert "<th></th>" not in text and "<th>target missed</th>" in text and "<td>missed</td>" in text


def test_every_module_that_draws_the_report_is_in_its_code_print():
    """``report_generate`` and ``report_html`` (split out of ``report``) were not in ``CODE``: an edit
    of the generated-data section left finished pages to be reused, drawn by the old code."""
    import ast
    from importlib.util import find_spec

    from lrl.evaluate.report import CODE

    seen, todo = set(), ["lrl.evaluate.report"]
    while todo:
        name = todo.pop()
        seen.add(name)
        tree = ast.parse(open(find_spec(name).origin, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrl.evaluate"):
                for mod in ([node.module] if node.module != "lrl.evaluate" else [f"lrl.evaluate.{a.name}" for a in node.names]):
                    if mod not in seen and mod != "lrl.evaluate.report_config":  # its fields are hashed as config
                        todo.append(mod)
    assert seen <= set(CODE), seen - set(CODE)


def test_the_report_takes_the_macro_f1_of_an_older_evaluate_output_from_its_types(tmp_path):
    """An evaluate folder written before ``macro_f1`` was kept is reused (its hash is unchanged)."""
    from lrl.evaluate.report_data import evaluate_scores

    (tmp_path / "metrics.json").write_text(json.dumps({"models": {"ug": {"dev": {
        "f1": 0.8, "precision": 1.0, "recall": 2 / 3, "sentences": 2,
        "per_type": {"LOC": {"f1": 0.0}, "PER": {"f1": 1.0}, "ORG": {"f1": 0.25}}}}}}))
    assert evaluate_scores(str(tmp_path))[0]["macro_f1"] == pytest.approx(1.25 / 3)


def test_an_evaluate_output_of_the_code_before_the_notes_is_made_again(tagger_folder, tmp_path, monkeypatch, capsys):
    """Outputs written before ``untrained_langs`` was recorded were reused as they were: a ug model on
    wo rows printed F1 0.0 with no note. Only such evaluations get a new name; others keep theirs."""
    from lrl.evaluate import command

    model, data = str(tagger_folder / "model"), str(tagger_folder / "data.conll")
    with monkeypatch.context() as m:  # named as the code before the key named it
        m.setattr(command, "untrained_key", lambda *a: {}, raising=False)
        old = Path(command.evaluate_files(model, data, "wo", str(tmp_path)))
        kept = Path(command.evaluate_files(model, data, "ug", str(tmp_path)))
    metrics = json.loads((old / "metrics.json").read_text())
    del metrics["models"]["model"]["data"]["untrained_langs"]  # as that code wrote it
    (old / "metrics.json").write_text(json.dumps(metrics))
    new = Path(command.evaluate_files(model, data, "wo", str(tmp_path)))
    assert new != old
    assert json.loads((new / "metrics.json").read_text())["models"]["model"]["data"]["untrained_langs"]["rows"] == {"wo": 2}
    capsys.readouterr()
    command.print_scores(str(new))
    assert "note: rows of wo (2 sentences) are in a language the model was not trained on" in capsys.readouterr().out
    # Rows of the language it was trained on: the same folder as before, not evaluated again.
    assert Path(command.evaluate_files(model, data, "ug", str(tmp_path))) == kept


def test_untrained_key_reads_the_models_languages(tagger_folder, tmp_path):
    from lrl.evaluate.notes import untrained_key

    model = str(tagger_folder / "model")
    assert untrained_key({"m": model}, {"m": ["ug", "ug"]}) == {}
    assert untrained_key({"m": model}, {"m": ["ug", "wo"]}) == {"untrained_notes": 1}
    assert untrained_key({"m": str(tmp_path)}, {"m": ["wo"]}) == {}  # no lrl_tagger.json: nothing known


def _align_metrics(folder: Path, words: int, unk: int) -> None:
    scores = {"f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": 5,
              "align": {"sentences": 5, "words": words, "unk_words": unk}}
    (folder / "metrics.json").write_text(json.dumps({"models": {"ug": {"dev": scores}}}))


def test_evaluate_warns_when_the_tokenizer_knows_few_of_the_evaluated_words(tmp_path, capsys):
    """Fine-tuning warned of a tokenizer that reads many words as [UNK]; evaluating the same model
    on such data said nothing. Above fine-tuning's threshold a line per model, on stderr."""
    from lrl.evaluate.command import print_scores
    from lrl.train.finetune import UNK_WARN

    _align_metrics(tmp_path, 1000, int(1000 * UNK_WARN) + 300)
    print_scores(str(tmp_path))
    err = capsys.readouterr().err
    assert ("warning: evaluate ug: the model's tokenizer reads 40% of the evaluated words (400 of 1000, dev) "
            "as its unknown token alone") in err
    assert "tokenizer.mode=extend" in err and "training words" not in err
    _align_metrics(tmp_path, 1000, int(1000 * UNK_WARN))  # at the threshold: no warning
    print_scores(str(tmp_path))
    assert "warning" not in capsys.readouterr().err


def test_a_joint_model_warns_of_the_one_language_its_tokenizer_cannot_read(tmp_path, monkeypatch, capsys):
    """A joint model on ug and am rows: its tokenizer (of Latin text) reads every Ge'ez word as
    [UNK], but summed with the many ug words that stayed under the threshold and nothing was said."""
    from lrl.evaluate.command import evaluate_files, print_scores
    from lrl.train.finetune import UNK_WARN
    from lrl.train.finetune_scratch import build_scratch_encoder

    ug = [["bir", "ikki", "salam", "dunya", "kitab"]] * 4  # 20 words the tokenizer knows
    build_scratch_encoder(tmp_path / "model", ug, ["ug", "am"], vocab_size=80, hidden=16, layers=1)
    cfg = json.loads((tmp_path / "model" / "config.json").read_text())
    labels = ["O", "B-LOC", "I-LOC"]
    cfg |= {"id2label": dict(enumerate(labels)), "label2id": {x: i for i, x in enumerate(labels)}}
    (tmp_path / "model" / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model" / "lrl_tagger.json").write_text(json.dumps({"head": "linear", "langs": ["ug", "am"]}))
    rows = [{"lang": "ug", "tokens": t, "tags": ["O"] * len(t)} for t in ug]
    rows.append({"lang": "am", "tokens": ["ሰላም", "ዓለም"], "tags": ["O", "O"]})  # Ge'ez: no piece of it known
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    path = evaluate_files(str(tmp_path / "model"), str(data), None, str(tmp_path / "runs"))
    split = json.loads((Path(path) / "metrics.json").read_text())["models"]["model"]["data"]
    assert split["align"]["unk_words"] / split["align"]["words"] <= UNK_WARN  # the sum hides it
    per = {lang: (a["words"], a["unk_words"]) for lang, a in split["align_per_lang"].items()}
    assert per == {"am": (2, 2), "ug": (20, 0)}
    capsys.readouterr()
    print_scores(path)
    err = capsys.readouterr().err
    assert ("warning: evaluate model: the model's tokenizer reads 100% of the evaluated am words (2 of 2, data) "
            "as its unknown token alone") in err
    assert "ug words" not in err and err.count("warning") == 1
    from lrl.evaluate import command

    monkeypatch.setattr(command, "align_key", lambda *a: {})  # as named before align_per_lang: not reused
    assert command.evaluate_files(str(tmp_path / "model"), str(data), None, str(tmp_path / "runs")) != path


def test_align_key_names_only_rows_of_several_languages():
    from lrl.evaluate.notes import align_key

    assert align_key([["ug", "ug"], ["am"]]) == {}
    assert align_key([["ug", "am"]]) == {"align_per_lang": 1}
