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
    from lrl.config import describe

    missing = [key for key, _, _, doc in describe(JobConfig) if not doc]
    assert not missing, f"fields without a docstring: {missing}"
