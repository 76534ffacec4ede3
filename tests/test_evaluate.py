"""The finetune stage (Ray tasks over seeds), the evaluate stage and ``lrl evaluate --model --data``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def job(data_root, tmp_path_factory):
    """A job on 100 train / 30 dev sentences of WikiANN ug, tiny model, 2 seeds, few steps."""
    from lrl.data.readers import read_conll

    tmp = tmp_path_factory.mktemp("job")
    for split, n in (("train", 100), ("dev", 30)):
        rows = read_conll(str(data_root / f"wikiann/ug/{split}"), "ug", split).table.slice(0, n).to_pylist()
        text = "\n\n".join("\n".join(f"{t}\t{g}" for t, g in zip(r["tokens"], r["tags"])) for r in rows)
        (tmp / f"ug_{split}.conll").write_text(text + "\n", encoding="utf-8")
    (tmp / "job.yaml").write_text(
        "data:\n  ner:\n"
        "    - {path: ug_train.conll, lang: ug, split: train}\n"
        "    - {path: ug_dev.conll, lang: ug, split: dev}\n"
        f"output: {{root: {tmp / 'runs'}}}\n"
        "finetune: {model: 'preset:tiny', max_steps: 4, eval_every: 2, batch_size: 16, lr: 0.001,"
        " max_length: 64, num_cpus: 1}\n"
        "evaluate: {seeds: [0, 1]}\n", encoding="utf-8")
    return tmp


@pytest.fixture(scope="module")
def finetuned(job, ray_session):
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    cfg = load_job(job / "job.yaml")
    return cfg, run_finetune(StageContext(cfg))


def test_finetune_stage_trains_every_seed_and_saves_the_best(finetuned, capsys):
    cfg, path = finetuned
    res = json.loads((Path(path) / "results.json").read_text())
    group = res["groups"]["ug"]
    assert [r["seed"] for r in group["runs"]] == [0, 1]
    f1 = group["summary"]["f1"]
    assert f1["n"] == 2 and 0.0 <= f1["mean"] <= 1.0 and f1["sd"] >= 0.0
    best = max(group["runs"], key=lambda r: r["dev_f1"])["seed"]
    assert group["best_seed"] == best
    model = Path(path) / "models/ug"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "lrl_tagger.json", "README.md"):
        assert (model / name).is_file(), name
    assert json.loads((model / "config.json").read_text())["id2label"]["0"] == "O"
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    # Same config and inputs: the finished folder is returned without training again.
    assert run_finetune(StageContext(load_job(cfg.data.root + "/job.yaml"))) == path
    from lrl.cli import main

    capsys.readouterr()
    assert main(["finetune", cfg.data.root + "/job.yaml"]) == 0  # the CLI calls the same stage
    assert "  (reused: finished " in capsys.readouterr().out  # and says it trained nothing


def test_evaluate_stage_writes_predictions_and_metrics(finetuned):
    from lrl.evaluate.command import run_evaluate
    from lrl.pipeline.stage import StageContext

    cfg, ft_path = finetuned
    path = Path(run_evaluate(StageContext(cfg, {"finetune": ft_path})))
    metrics = json.loads((path / "metrics.json").read_text())
    dev = metrics["models"]["ug"]["dev"]
    assert 0.0 <= dev["f1"] <= 1.0 and dev["sentences"] == 30 and "per_lang" in dev
    assert metrics["seeds_dev"]["ug"]["f1"]["n"] == 2
    _check_conll(path / "predictions/ug/dev.conll", 30)


def test_evaluate_cli_on_any_labelled_file(finetuned, job, tmp_path, capsys):
    from lrl.cli import main

    _, ft_path = finetuned
    rc = main(["evaluate", "--model", f"{ft_path}/models/ug", "--data", str(job / "ug_dev.conll"),
               "--lang", "ug", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "F1" in out
    folder = next(tmp_path.glob("evaluate-*"))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0.0 <= metrics["models"]["ug"]["data"]["f1"] <= 1.0
    _check_conll(folder / "predictions/ug/data.conll", 30)
    import pyarrow.parquet as pq

    t = pq.read_table(folder / "predictions/ug/data.parquet")
    assert all(len(a) == len(b) for a, b in zip(t.column("tokens").to_pylist(), t.column("pred").to_pylist()))
    assert main(["evaluate", "--model", f"{ft_path}/models/ug", "--data", str(job / "ug_dev.conll"),
                 "--out", str(tmp_path)]) == 2  # CoNLL without --lang: a clear error, not a crash


def test_evaluate_cli_scores_a_per_language_folder_by_language(finetuned, job, tmp_path, capsys):
    """Handed a per-language stage folder (models/ug, models/sw) and ug data, ``--model --data``
    scored the sw model on the ug rows too; now each model sees its own language's rows only."""
    import shutil

    from lrl.cli import main

    _, ft_path = finetuned
    stage = tmp_path / "finetune-x"
    for lang in ("ug", "sw"):
        shutil.copytree(f"{ft_path}/models/ug", stage / "models" / lang)
    assert main(["evaluate", "--model", str(stage), "--data", str(job / "ug_dev.conll"), "--lang", "ug",
                 "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads(next((tmp_path / "out").glob("evaluate-*/metrics.json")).read_text())
    assert list(metrics["models"]) == ["ug"]
    assert main(["evaluate", "--model", str(stage), "--data", str(job / "ug_dev.conll"), "--lang", "wo",
                 "--out", str(tmp_path / "out")]) == 2  # no model of wo: said, not scored
    assert "no model of" in capsys.readouterr().err


def _check_conll(path: Path, sentences: int) -> None:
    blocks = [b for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    assert len(blocks) == sentences
    for b in blocks:
        for line in b.splitlines()[1:]:
            tok, gold, pred = line.split("\t")
            assert gold and pred


def test_read_labelled_takes_lang_from_flag_or_column(tmp_path):
    import pyarrow.parquet as pq

    from lrl.data.files import InputError
    from lrl.data.schema import ner_table
    from lrl.evaluate.predict import read_labelled

    rows = [{"id": "a", "lang": "ug", "tokens": ["x", "y"], "tags": ["B-PER", "I-PER"]},
            {"id": "b", "lang": "wo", "tokens": ["z"], "tags": ["O"]},
            {"id": "c", "lang": "wo", "tokens": ["z"], "tags": ["I-XX", "O"]}]  # bad: lengths differ
    pq.write_table(ner_table(rows), tmp_path / "d.parquet")
    table, bad = read_labelled(str(tmp_path / "d.parquet"), None)
    assert table.column("lang").to_pylist() == ["ug", "wo"] and bad == 1
    pq.write_to_dataset(ner_table(rows[:2]), str(tmp_path / "gen/data"), partition_cols=["lang"])
    table, _ = read_labelled(str(tmp_path / "gen"), None)  # a generate output: lang from the partition
    assert sorted(table.column("lang").to_pylist()) == ["ug", "wo"]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    table, bad = read_labelled(str(tmp_path / "d.jsonl"), None)
    assert sorted(table.column("id").to_pylist()) == ["a", "b"] and bad == 1
    # A U+2028 inside a JSON string cut the line where the langs were gathered: a JSONDecodeError.
    split = {"id": "s", "lang": "ug", "tokens": ["Da\u2028kar"], "tags": ["B-LOC"]}
    (tmp_path / "s.jsonl").write_text(json.dumps(split, ensure_ascii=False) + "\n" + json.dumps(rows[0]), encoding="utf-8")
    table, bad = read_labelled(str(tmp_path / "s.jsonl"), None)
    assert table.column("id").to_pylist() == ["a"] and bad == 1  # the token with U+2028: a reject
    (tmp_path / "d.conll").write_text("x\tB-PER\n", encoding="utf-8")
    with pytest.raises(InputError, match="--lang"):
        read_labelled(str(tmp_path / "d.conll"), None)
    assert read_labelled(str(tmp_path / "d.conll"), "ug")[0].num_rows == 1


def test_evaluate_stage_scores_a_language_model_only_on_its_language(finetuned, job, data_root, tmp_path):
    """ug has no test split here, sw has one: the ug model must not be scored on Swahili rows."""
    from lrl.data.readers import read_conll
    from lrl.evaluate.command import run_evaluate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    _, ft_path = finetuned
    rows = read_conll(str(data_root / "wikiann/sw/test"), "sw", "test").table.slice(0, 5).to_pylist()
    text = "\n\n".join("\n".join(f"{t}\t{g}" for t, g in zip(r["tokens"], r["tags"])) for r in rows)
    (tmp_path / "sw_test.conll").write_text(text + "\n", encoding="utf-8")
    cfg = load_job(job / "job.yaml", [f"output.root={tmp_path / 'runs'}", "data.ner=["
                                      f"{{path: {job / 'ug_dev.conll'}, lang: ug, split: dev}}, "
                                      f"{{path: {tmp_path / 'sw_test.conll'}, lang: sw, split: test}}]"])
    path = Path(run_evaluate(StageContext(cfg, {"finetune": ft_path})))
    metrics = json.loads((path / "metrics.json").read_text())
    assert set(metrics["models"]["ug"]) == {"dev"}  # no "test" scored on another language's rows
    assert not (path / "predictions/ug/test.conll").exists()


def test_metrics_point_at_prediction_files_that_exist(finetuned):
    """The paths in metrics.json lead to the committed folder, not to the removed temporary one."""
    from lrl.evaluate.command import run_evaluate
    from lrl.pipeline.stage import StageContext

    cfg, ft_path = finetuned
    path = Path(run_evaluate(StageContext(cfg, {"finetune": ft_path})))
    files = json.loads((path / "metrics.json").read_text())["models"]["ug"]["dev"]["files"]
    assert files and all((path / f).is_file() for f in files.values()), files


def test_few_shot_card_counts_and_rerun_prints_the_folder(job, ray_session, capsys):
    """The card counts the sentences a few-shot model saw, and a re-run still says where the output is."""
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    cfg = load_job(job / "job.yaml", ["finetune.few_shot=5", "finetune.max_steps=1", "finetune.eval_every=1",
                                      "evaluate.seeds=[0]"])
    path = run_finetune(StageContext(cfg))
    card = (Path(path) / "models/ug/README.md").read_text(encoding="utf-8")
    assert "| train (after few-shot / augmentation mix) | ug | train | 5 |" in card
    capsys.readouterr()
    assert run_finetune(StageContext(cfg)) == path
    out = capsys.readouterr().out
    assert f"finetune: {path}" in out and "ug: dev F1" in out


def test_evaluate_stage_reruns_when_the_rows_read_change(finetuned, job, tmp_path):
    """data.labels (and bio_policy) decide which rows are scored: changing them is not a re-run."""
    from lrl.evaluate.command import run_evaluate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    _, ft_path = finetuned
    over = [f"output.root={tmp_path}", "evaluate.splits=[dev]"]
    first = run_evaluate(StageContext(load_job(job / "job.yaml", over), {"finetune": ft_path}))
    # Only PER allowed: sentences with other types are quarantined, so fewer rows are scored.
    second = run_evaluate(StageContext(load_job(job / "job.yaml", over + ["data.labels=[PER]"]),
                                       {"finetune": ft_path}))
    assert second != first
    scored = [json.loads((Path(p) / "metrics.json").read_text())["models"]["ug"]["dev"]["sentences"]
              for p in (first, second)]
    assert scored[1] < scored[0]


def test_the_evaluate_stage_prints_its_scores_once_and_the_command_also_for_a_reused_folder(
        finetuned, job, tmp_path, capsys):
    """Under ``lrl run`` the stage said only "evaluate: done in ..." (finetune printed its dev F1):
    the scores were in metrics.json and the report only."""
    from lrl.cli import main
    from lrl.evaluate.command import run_evaluate
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    _, ft_path = finetuned
    over = [f"output.root={tmp_path}", "evaluate.splits=[dev]"]
    capsys.readouterr()
    path = run_evaluate(StageContext(load_job(job / "job.yaml", over), {"finetune": ft_path}))
    out = capsys.readouterr().out
    assert f"evaluate: {path}" in out and out.count("ug [dev]: F1 ") == 1, out
    assert run_evaluate(StageContext(load_job(job / "job.yaml", over), {"finetune": ft_path})) == path
    assert "F1" not in capsys.readouterr().out  # reused under lrl run: "reused (finished ...)" says it
    assert main(["evaluate", str(job / "job.yaml"), *over, f"evaluate.model={ft_path}"]) == 0
    out = capsys.readouterr().out
    assert out.count("ug [dev]: F1 ") == 1, out  # the command prints a reused folder's scores, once


def test_evaluate_stage_config_mistakes_are_one_line_errors(finetuned, job, capsys):
    """``lrl evaluate JOB.yaml`` without models, or with splits the data lacks: an error, no traceback."""
    from lrl.cli import main

    _, ft_path = finetuned
    assert main(["evaluate", str(job / "job.yaml")]) == 2
    assert "evaluate needs models: set evaluate.model" in capsys.readouterr().err
    # finetune alone, with no encoder: named as finetune (it said "tune needs ..., or run pretrain
    # first", and after `lrl pretrain` it said the same), with the setting it reads
    assert main(["finetune", str(job / "job.yaml"), "finetune.model=null"]) == 2
    err = capsys.readouterr().err
    assert "finetune needs an encoder: lrl finetune runs" in err and "set finetune.model to" in err, err
    assert "tune.model_path" not in err, err
    assert main(["evaluate", str(job / "job.yaml"), f"evaluate.model={ft_path}", "evaluate.splits=[test]"]) == 2
    assert "evaluate.splits" in capsys.readouterr().err


def test_finetune_fetches_only_the_best_seeds_model(job, ray_session, tmp_path, monkeypatch):
    """Every seed's weights used to come back to the driver in one ``ray.get`` (seeds x languages x
    model size in driver memory); now the scores come back and only the best seed's files."""
    import ray

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    fetched_models = []
    real_get = ray.get

    def count(value):
        if isinstance(value, dict) and any(str(k).endswith("model.safetensors") for k in value):
            fetched_models.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                count(v)

    def spy(refs, *a, **kw):
        value = real_get(refs, *a, **kw)
        count(value)
        return value

    monkeypatch.setattr(ray, "get", spy)
    over = [f"output.root={tmp_path}", "finetune.max_steps=2", "finetune.eval_every=1", "evaluate.seeds=[0, 1, 2]"]
    path = run_finetune(StageContext(load_job(job / "job.yaml", over + ["name=first"])))
    assert len(fetched_models) == 1
    assert (Path(path) / "models/ug/model.safetensors").is_file()
    # A renamed job reuses the folder (the hash leaves the name out), so the card may not claim
    # the first job's name.
    assert run_finetune(StageContext(load_job(job / "job.yaml", over + ["name=second"]))) == path
    assert "# lrl-ug-ner\n" in (Path(path) / "models/ug/README.md").read_text(encoding="utf-8")


def test_a_changed_license_is_not_answered_with_the_old_cards(job, ray_session, tmp_path):
    """The cards carry report.license: a finished finetune output with the old one is not reused."""
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.finetune import run_finetune

    over = [f"output.root={tmp_path}", "finetune.max_steps=1", "finetune.eval_every=1", "evaluate.seeds=[0]"]
    first = run_finetune(StageContext(load_job(job / "job.yaml", over)))
    second = run_finetune(StageContext(load_job(job / "job.yaml", over + ["report.license=apache-2.0"])))
    assert second != first
    assert "license: apache-2.0" in (Path(second) / "models/ug/README.md").read_text(encoding="utf-8")


def test_evaluate_names_labels_the_model_and_the_data_do_not_share(finetuned, job, tmp_path, capsys):
    """Dev with years tagged B-DATE and ORG/PER removed: DATE is scored as misses and ORG/PER
    predictions as false positives, and the output says so instead of a silently lower F1."""
    from lrl.cli import main

    _, ft_path = finetuned
    blocks = (job / "ug_dev.conll").read_text(encoding="utf-8").strip().split("\n\n")
    out = []
    for b in blocks:
        rows = [line.split("\t") for line in b.splitlines()]
        out.append("\n".join(f"{t}\t{'B-DATE' if t.endswith('-يىلى') else g if 'LOC' in g else 'O'}" for t, g in rows))
    (tmp_path / "d.conll").write_text("\n\n".join(out) + "\n", encoding="utf-8")
    assert "B-DATE" in out[0] + "".join(out)
    assert main(["evaluate", "--model", f"{ft_path}/models/ug", "--data", str(tmp_path / "d.conll"),
                 "--lang", "ug", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "DATE (" in printed and "not among the model's labels" in printed
    folder = next(tmp_path.glob("evaluate-*"))
    gaps = json.loads((folder / "metrics.json").read_text())["models"]["ug"]["data"]["label_gaps"]
    assert set(gaps["unknown_to_model"]) == {"DATE"} and {"ORG", "PER"} <= set(gaps["absent_from_data"])


def test_evaluate_names_the_rows_no_per_language_model_scores(tmp_path, monkeypatch, capsys):
    """``data.ner`` with only ``{lang: yo, split: dev}`` for yo beside ug and wo train+dev: no yo
    model is trained, and ``lrl evaluate`` left the yo rows out of metrics.json without a word.
    (The models are folders with a config.json; scoring them is faked.)"""
    from lrl.cli import main
    from lrl.evaluate import command

    ft = tmp_path / "finetune-x"
    for lang in ("ug", "wo"):
        (ft / "models" / lang).mkdir(parents=True)
        (ft / "models" / lang / "config.json").write_text("{}", encoding="utf-8")
    for lang in ("ug", "wo", "yo"):
        (tmp_path / f"{lang}.conll").write_text("Qeshqer\tB-LOC\nshehiri\tO\n\nbir\tO\n", encoding="utf-8")
    ner = ", ".join(f"{{path: {tmp_path}/{lang}.conll, lang: {lang}, split: dev}}" for lang in ("ug", "wo", "yo"))
    (tmp_path / "job.yaml").write_text(f"data: {{ner: [{ner}]}}\noutput: {{root: {tmp_path / 'runs'}}}\n"
                                       f"evaluate: {{model: {ft}, splits: [dev]}}\n", encoding="utf-8")
    scored: list[str] = []
    monkeypatch.setattr(command, "evaluate_model", lambda folder, table, *a, **k: scored.append(Path(folder).name)
                        or {"f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": table.num_rows})
    assert main(["evaluate", str(tmp_path / "job.yaml")]) == 0
    err = capsys.readouterr().err
    assert scored == ["ug", "wo"]
    assert f"warning: evaluate: no model of {ft} is for yo dev (2 sentences): the per-language models (ug, wo)" \
        in err, err


def test_evaluate_says_nothing_of_languages_left_out_by_choice(tmp_path, monkeypatch, capsys):
    """``tune.languages=[ug]`` on a job with ug and wo train+dev (the multilingual job tuned for one
    language): evaluate warned "no model ... is for wo dev ...; fine-tune a model for each (a
    split: train source in data.ner)", which wo has; the run's own check says nothing there. A
    language the setting chose and the models lack is still named."""
    from lrl.evaluate import command
    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext

    tune = tmp_path / "tune-x"
    (tune / "models" / "ug").mkdir(parents=True)
    (tune / "models" / "ug" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "s.conll").write_text("Qeshqer\tB-LOC\nshehiri\tO\n", encoding="utf-8")
    ner = ", ".join(f"{{path: {tmp_path}/s.conll, lang: {lang}, split: {split}}}"
                    for lang in ("ug", "wo") for split in ("train", "dev"))
    monkeypatch.setattr(command, "evaluate_model", lambda folder, table, *a, **k: {
        "f1": 0.5, "precision": 0.5, "recall": 0.5, "sentences": table.num_rows})
    for chosen, said in (("tune.languages=[ug]", False), ("finetune.languages=[ug]", False),
                         ("tune.languages=[ug,wo]", True), ("tune.languages=[]", True)):
        cfg = load_job(None, [f"data.ner=[{ner}]", f"output.root={tmp_path / 'runs'}", chosen])
        command.run_evaluate(StageContext(cfg, {"tune": str(tune)}), quiet=True)
        err = capsys.readouterr().err
        assert ("warning: evaluate: no model of" in err and "is for wo dev (1 sentences)" in err) is said, (chosen, err)
