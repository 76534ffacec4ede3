"""``lrl pretrain`` on its own (no ``pretrain.tokenizer_path``, outside ``lrl run``) trains the
tokenizer stage's folder for its config first: its help lists the tokenizer fields, its dry run
says which tokenizer it uses and names its own folder once that tokenizer is finished, and the
run says where the tokenizer is (a user's audit: all three were silent or pointed at lrl run)."""

from __future__ import annotations

import re

from pretrain_jobs import _job

from lrl import cli


def main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # --help and a stage's --dry-run exit from where they are handled
        return int(exc.code or 0)


def test_help_lists_the_tokenizer_fields_a_standalone_pretrain_reads(capsys):
    assert main(["pretrain", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tokenizer.vocab_size" in out and "pretrain.steps" in out


def test_dry_run_and_run_name_the_tokenizer_and_the_folder(ray_session, tmp_path, capsys):
    job = _job(tmp_path, {"steps": 2, "checkpoint_every": 2, "report_every": 1})
    assert main(["pretrain", str(job), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"# tokenizer: \S+/tokenizer-\w+ \(.*not written yet: lrl pretrain trains it first\)", out), out
    assert "# output: " in out and "pretrain-<hash" in out  # not named: its tokenizer is not known yet
    assert main(["tokenizer", str(job)]) == 0
    tok = re.search(r"tokenizer: (\S+/tokenizer-\w+)", capsys.readouterr().out).group(1)
    assert main(["pretrain", str(job), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"# tokenizer: {tok} (" in out and "finished, reused)" in out
    named = re.search(r"# output: (\S+/pretrain-\w+) \(not written yet", out).group(1)
    assert main(["pretrain", str(job)]) == 0
    out = capsys.readouterr().out
    assert "pretrain.tokenizer_path is unset, so the tokenizer stage's folder for this config is used" in out
    assert out.split("pretrain: ")[1].split("\n")[0].strip() == named  # the stage's folder, as before
    assert f"tokenizer: {tok}" in out and "(reused: finished" in out  # with the tokenizer's summary
    assert named in out  # the folder the dry run named is the one written
    assert (tmp_path / "runs" / named.rsplit("/", 1)[1] / "README.md").is_file()
