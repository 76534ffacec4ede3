"""The generate stage's promises checked on its written output: every produced row is rebuilt
from its op, parent and seed; a re-run does no work; ``--dry-run`` prints the resolved config."""

from __future__ import annotations

from collections import Counter

from test_generate import _job, _slice

from lrl.job import load_job


def test_every_written_row_is_regenerated_from_its_op_parent_and_seed(ray_session, data_root, tmp_path, monkeypatch):
    """The issue's promise, checked on the written output rather than in memory: each produced
    row (oversampled copies, every augmentation op, rows a filter rejected) is rebuilt from its
    ``op``, its ``parent_id`` (looked up in the same output) and its ``seed`` alone, with the
    resources rebuilt from the job's config and inputs."""
    from lrl.data.schema import NER_SCHEMA
    from lrl.generate.augment import replay, row_seed
    from lrl.generate.replay import stage_resources
    from lrl.generate.stage import run_generate
    from lrl.generate.write import read_rows
    from lrl.pipeline.stage import StageContext

    lex = tmp_path / "wo.tsv"
    lex.write_text("ci\tca,cee\nak\tag\nla\tlaa\n", encoding="utf-8")
    cfg = _job(data_root, tmp_path, "augment.ops=[insert, swap, delete, synonym, mention, labelwise, shuffle]",
               "augment.copies=2", f"augment.lexicons={{wo: {lex}}}", "seed=4",
               "oversample.enabled=true", "oversample.target_per_lang=90", "filter.ops=[dedup]")
    path = run_generate(StageContext(cfg), quiet=True)
    cols = NER_SCHEMA.names
    data = read_rows(path).to_pylist()
    rejected = [r for r in read_rows(path, "rejects").to_pylist() if r["tokens"] is not None]
    assert rejected, "no generated row was rejected: the filter path is not covered"
    by_id = {r["id"]: r for r in data + rejected}
    resources = stage_resources(cfg)  # as the stage built them (names from NER rows only)
    made = Counter()
    for r in data + rejected:
        if r["op"] == "orig":
            continue
        parent = {c: by_id[r["parent_id"]][c] for c in cols}
        copy = int(r["id"].rsplit("|", 1)[1])
        assert r["seed"] == row_seed(4, r["op"], r["parent_id"], copy), r["id"]
        if r["op"] == "oversample":
            again = {**parent, "id": r["id"], "op": "oversample", "parent_id": parent["id"], "seed": r["seed"]}
        else:
            again = replay(parent, r["op"], r["seed"], cfg.augment, resources, copy=copy)
        assert again == {c: r[c] for c in cols}, r["id"]
        made[r["op"]] += 1
    assert set(made) == {"oversample", "insert", "swap", "delete", "synonym", "mention", "labelwise", "shuffle"}, made

    # A re-run does no work at all: not even the inputs are read (file times alone would not show
    # it; a run that regenerated everything and then found the folder finished leaves them too).
    from lrl.generate import stage

    def no_work(*args, **kwargs):
        raise AssertionError("a finished output was regenerated")

    monkeypatch.setattr(stage, "read_inputs", no_work)
    monkeypatch.setattr(stage, "_generate", no_work)
    assert run_generate(StageContext(cfg), quiet=True) == path


def test_dry_run_prints_the_resolved_config_and_exits(data_root, tmp_path, capsys):
    """``lrl generate CONFIG overrides --dry-run``: the config as the run would use it (the YAML,
    the overrides, the defaults and data.root resolved to the job's folder), then exit 0 with
    nothing written."""
    import yaml

    from lrl.cli import main

    _slice(data_root, tmp_path, "ug", 5)
    job = tmp_path / "job.yaml"
    job.write_text(f"data:\n  ner:\n    - {{path: in/ug.conll, lang: ug}}\noutput:\n  root: {tmp_path / 'out'}\n"
                   "augment:\n  ops: [shuffle]\n", encoding="utf-8")
    try:
        rc = main(["generate", str(job), "augment.ops=[swap,mention]", "ray.num_cpus=1", "--dry-run"])
    except SystemExit as exc:  # the dry run exits where the config is loaded
        rc = exc.code
    assert rc == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == load_job(job, ["augment.ops=[swap,mention]", "ray.num_cpus=1"]).model_dump(mode="json")
    assert printed["augment"]["ops"] == ["swap", "mention"] and printed["ray"]["num_cpus"] == 1
    assert printed["data"]["root"] == str(tmp_path) and printed["augment"]["copies"] == 1
    assert not (tmp_path / "out").exists()
