import pytest

from lrl.config import ConfigError, help_text, parse_override
from lrl.job import JobConfig, load_job


def test_dotted_overrides_parse_lists_and_numbers():
    cfg = load_job(None, ["augment.ops=[swap,mention]", "ray.num_cpus=2", "seed=7"])
    assert cfg.augment.ops == ["swap", "mention"]
    assert cfg.ray.num_cpus == 2 and cfg.seed == 7


def test_unknown_key_is_rejected_with_its_path():
    with pytest.raises(ConfigError, match=r"ray\.nmu_cpus: unknown key"):
        load_job(None, ["ray.nmu_cpus=2"])


def test_wrong_type_is_rejected_with_its_path(tmp_path):
    f = tmp_path / "job.yaml"
    f.write_text("ray:\n  num_cpus: many\n")
    with pytest.raises(ConfigError, match=r"job.yaml.*\n.*ray\.num_cpus"):
        load_job(f)


def test_errors_name_the_line_of_the_file_or_the_override(tmp_path):
    """A key path alone left the line to be found in a long job file, and a bad override was
    reported against the file as if it were written there."""
    job = tmp_path / "job.yaml"
    job.write_text("name: t\ndata:\n  ner:\n    - {path: a.conll, lang: ug}\n    - path: b.conll\n"
                   "      lang: 'not a code'\npretrain:\n  steps: many\n")
    with pytest.raises(ConfigError) as err:
        load_job(job)
    text = str(err.value)
    assert "data.ner.1.lang (line 6): " in text and "pretrain.steps (line 8): " in text
    with pytest.raises(ConfigError) as err:
        load_job(job, ["pretrain.steps=-1", "data.ner=[{path: a, lang: ug}]"])
    assert "pretrain.steps (set by an override): " in str(err.value) and "(line " not in str(err.value)
    # a section's own check failing on keys an override set inside it: those are named, not only
    # the section's line in the file
    job.write_text("name: t\nfinetune:\n  lr: 0.001\n")
    with pytest.raises(ConfigError) as err:
        load_job(job, ["finetune.schedule.type=one_cycle", "finetune.schedule.warmup_ratio=0.2"])
    assert ("finetune.schedule (line 2; overrides finetune.schedule.type, finetune.schedule.warmup_ratio): "
            in str(err.value)), str(err.value)
    job.write_text("name: t\nfinetune:\n  schedule:\n    type: one_cycle\n")
    with pytest.raises(ConfigError) as err:
        load_job(job, ["finetune.schedule.warmup_ratio=0.2"])
    assert "finetune.schedule (line 3; overrides finetune.schedule.warmup_ratio): " in str(err.value), str(err.value)


def test_config_is_frozen():
    cfg = load_job(None)
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        cfg.seed = 3


def test_data_root_defaults_to_config_folder(tmp_path):
    f = tmp_path / "job.yaml"
    f.write_text("name: x\n")
    assert load_job(f).data.root == str(tmp_path)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("augment.ops")


def test_every_field_is_documented():
    text = help_text(JobConfig)
    undocumented = [line for line in text.splitlines() if line.startswith("      ") and not line.strip()]
    assert not undocumented
    from lrl.pipeline.reference import rows

    missing = [key for key, _, _, doc in rows(JobConfig) if not doc]
    assert not missing, f"fields without a docstring: {missing}"
    # Fields of configs in lists and optional sections too: --help left out 81 of 340.
    for key in ("data.ner[].hf_config", "data.text[].max_lines", "translate.train.target",
                "translate.backtranslate.to_pivot.model"):
        assert f"  {key} (" in text, key


_DISABLED = "oversample.target_per_lang=10"
_WARNING = "warning: oversample.enabled is false: oversample.target_per_lang has no effect"


def test_a_config_warning_prints_once_per_command(capsys):
    """Settings of a disabled section warn at load; a command that loads the job again repeated
    the warning. Library calls (no command) still warn at every load."""
    from lrl.config import command_warnings
    from lrl.job import load_job

    with command_warnings():
        load_job(None, [_DISABLED])
        load_job(None, [_DISABLED])
    assert capsys.readouterr().err.count(_WARNING) == 1
    load_job(None, [_DISABLED])
    load_job(None, [_DISABLED])
    assert capsys.readouterr().err.count(_WARNING) == 2


def test_the_cluster_run_of_lrl_submit_does_not_repeat_its_warnings(tmp_path, monkeypatch, capsys):
    """``lrl submit`` validates the job and warns; the cluster's ``lrl run`` loads the same file and
    its log, streamed back to the same terminal, said it all again."""
    from lrl import cli
    from lrl.config import SHOWN_ENV, command_warnings
    from lrl.job import load_job
    from lrl.pipeline.submit import runtime_env

    job = tmp_path / "job.yaml"
    # No labelled data: a pipeline that stops after pretraining (tune would need dev sentences).
    job.write_text(f"name: t\noutput:\n  root: {tmp_path / 'runs'}\noversample:\n  target_per_lang: 10\n"
                   "pipeline:\n  stages: [generate, tokenizer, pretrain]\n")
    with command_warnings():
        env = runtime_env(load_job(job))["env_vars"]
    assert _WARNING in capsys.readouterr().err
    monkeypatch.setenv(SHOWN_ENV, env[SHOWN_ENV])  # what the job's entrypoint runs with
    assert cli.main(["run", str(job), "--dry-run"]) == 0
    assert _WARNING not in capsys.readouterr().err
    monkeypatch.delenv(SHOWN_ENV)
    assert cli.main(["run", str(job), "--dry-run"]) == 0  # `lrl run` on its own warns as before
    assert _WARNING in capsys.readouterr().err


@pytest.mark.parametrize("override,hint", [
    ("pretrain.step=10", "pretrain.step: unknown key (did you mean 'steps'?)"),
    ("finetun.epochs=1", "finetun: unknown key (did you mean 'finetune'?)"),
    ("data.ner=[{path: a.conll, lang: yo, formt: conll}]", "data.ner.0.formt: unknown key (did you mean 'format'?)"),
    ("pretrain.aux.colum=xpos", "pretrain.aux.colum: unknown key (did you mean 'column'?)"),
    # 'mode' is closer, but takes only per_language or joint: the key whose field takes the value
    ("finetune.modle=preset:micro", "finetune.modle: unknown key (did you mean 'model'?)"),
    ("finetune.mdoe=joint", "finetune.mdoe: unknown key (did you mean 'mode' or 'model'?)"),
])
def test_a_misspelt_key_names_the_key_it_meant(override, hint):
    """``pretrain.step=10`` said only "unknown key": the user had to search docs/config.md for
    the spelling. The closest field of the same section is named; nothing is guessed when none is close."""
    with pytest.raises(ConfigError) as err:
        load_job(None, [override])
    assert hint in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_job(None, ["pretrain.zzz=1"])
    assert "pretrain.zzz: unknown key (got 1)" in str(err.value)


@pytest.mark.parametrize("override,message", [
    ("finetune.model=preset:", "finetune.model: Value error, no preset name after 'preset:'; "
                               "choose preset:tiny, preset:micro, preset:small, preset:base, or a model folder"),
    ("finetune.model=preset:huge", "finetune.model: Value error, no model preset 'huge'; choose"),
    ("tune.model_path=preset:", "tune.model_path: Value error, no preset name after 'preset:'"),
])
def test_a_preset_without_a_known_name_is_a_config_error_naming_the_field(override, message):
    """``finetune.model=preset:`` was read by YAML as the mapping {preset: null} ("Input should be
    a valid string", of a value never written as a mapping), and an unknown preset name passed the
    load and ``--dry-run``, failing only once the stage had read its data."""
    with pytest.raises(ConfigError) as err:
        load_job(None, [override])
    assert message in str(err.value)
    assert parse_override("finetune.model=preset:")[1] == "preset:"
    assert parse_override("a.b={x: 1}")[1] == {"x": 1} and parse_override("a.b=x: 1")[1] == {"x": 1}
    assert load_job(None, ["finetune.model=preset:tiny", "tune.model_path=/some/folder"]).finetune.model == "preset:tiny"


def test_a_list_element_override_takes_an_index_in_brackets():
    """``data.ner[0].lang=yo`` (how ``--help`` writes list fields: ``data.ner[].lang``) was refused as
    "data.ner[0] ...: unknown key (did you mean 'ner'?)"; only ``data.ner.0.lang`` worked."""
    two = "data.ner=[{path: a.conll, lang: ug}, {path: b.conll, lang: ug, split: dev}]"
    assert parse_override("data.ner[1].lang=yo") == (["data", "ner", "1", "lang"], "yo")
    bracket = load_job(None, [two, "data.ner[1].lang=yo"])
    assert bracket == load_job(None, [two, "data.ner.1.lang=yo"])
    assert [s.lang for s in bracket.data.ner] == ["ug", "yo"]
    assert load_job(None, [two, "data.ner[-1].lang=yo"]).data.ner[1].lang == "yo"
    with pytest.raises(ConfigError, match=r"override data\.ner\.2\.lang: data\.ner has 2 element\(s\) "
                                          r"\(indices 0-1\), no \[2\]"):
        load_job(None, [two, "data.ner[2].lang=yo"])
    with pytest.raises(ConfigError, match=r"name a list element by its index, e\.g\. data\.ner\[0\]\.lang=yo"):
        load_job(None, [two, "data.ner[].lang=yo"])
    with pytest.raises(ConfigError, match=r"data\.ner is a list; name an element by its index"):
        load_job(None, [two, "data.ner.first.lang=yo"])


def test_a_leading_tilde_is_the_home_folder_in_roots_and_input_paths(monkeypatch, tmp_path):
    """The shell leaves ``output.root=~/runs`` as typed and YAML never expands it: a literal ``~``
    folder was made in the working folder, and ``~/data`` inputs were not found."""
    from lrl.data.files import resolve
    from lrl.job import load_job

    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_job(None, ["data.root=~/d", "output.root=~/r", "pipeline.state=~/s.json", "tune.storage_path=~/t"])
    assert (cfg.data.root, cfg.output.root) == (str(tmp_path / "d"), str(tmp_path / "r"))
    assert (cfg.pipeline.state, cfg.tune.storage_path) == (str(tmp_path / "s.json"), str(tmp_path / "t"))
    assert resolve("~/x.conll", "/elsewhere") == str(tmp_path / "x.conll")
    assert resolve("a/~b", "/data") == "/data/a/~b" and load_job(None, ["output.root=s3://b/~x"]).output.root == "s3://b/~x"
