"""What the generate stage says about machine translation: a step that kept few of its rows, a
translate section that translates nothing, filters it runs without, length-ratio reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrl.job import load_job

ROWS = "".join(f"Juma{i}\tB-PER\nalikwenda\tO\nDodoma\tB-LOC\n\n" for i in range(12))


def test_a_translation_step_that_keeps_no_row_warns_with_its_reasons(ray_session, tmp_path, capsys):
    """Every translation rejected (here: markers garbled, no fuzzy repair) gave output = input,
    rc 0 and no word; the summary now says how many were kept and why the rest were not."""
    from lrl.generate.stage import run_generate
    from lrl.pipeline.stage import StageContext

    (tmp_path / "sw.conll").write_text(ROWS, encoding="utf-8")
    cfg = load_job(None, [f"data.root={tmp_path}", "data.ner=[{path: sw.conll, lang: sw}]",
                          f"output.root={tmp_path / 'runs'}", "translate.enabled=true",
                          "translate.train={sources: [sw], target: ug, model: {backend: fake, "
                          "fake: {garble_marker_rate: 1.0}}}", "translate.projection.fuzzy=false",
                          "filter.ops=[length_ratio]"])
    run_generate(StageContext(cfg))
    out = capsys.readouterr().out
    assert "warning: translate kept 0 of the 12 rows it translated (under 50%); rejects: projection 12" in out


def test_kept_lines_threshold_and_top_reasons():
    from lrl.generate.translate.checks import kept_lines

    rejects = {"translate/translation_cut": 700, "translate/projection": 200, "translate/length_ratio": 50,
               "translate/lid": 1, "backtranslate/translation_empty": 5}
    (line,) = kept_lines({"orig": 1000, "translate": 49, "backtranslate": 95}, rejects)
    assert line.startswith("  warning: translate kept 49 of the 1000 rows it translated")
    assert "translation_cut 700 (outputs stopped at max_length" in line and "lid" not in line  # top 3
    assert kept_lines({"translate": 500}, {"translate/projection": 500}) == []  # half kept: fine
    assert kept_lines({"orig": 10}, {}) == []  # nothing translated


def test_translate_that_translates_nothing_warns(capsys):
    bt = "translate.backtranslate={lang: wo, pivot: en, to_pivot: {backend: fake}, from_pivot: {backend: fake}"
    train = "translate.train={sources: [en], target: ug, model: {backend: fake}}"
    for extra, said in ((["translate.enabled=true"], "neither translate.train nor translate.backtranslate"),
                        (["translate.enabled=true", bt + ", labelled: false, text: false}"],
                         "labelled=false and text=false: nothing is translated"),
                        (["translate.enabled=true", train, bt + ", labelled: false, text: false}"],
                         "it back-translates nothing"),
                        (["translate.enabled=true", bt + ", labelled: false}"], None),
                        (["translate.enabled=true", train], None)):
        load_job(None, extra)
        err = capsys.readouterr().err
        assert (said in err) if said else "nothing" not in err, (extra, err)


def test_length_ratio_reason_shows_the_lengths():
    """``0.33 < 0.33`` (21/64 rounded to 2 digits) read as a reject in error."""
    import pyarrow as pa

    from lrl.data.schema import text_table
    from lrl.generate.filters import LengthRatioFilter
    from lrl.generate.translate.columns import widen

    table = widen(text_table([{"id": "ug:0", "lang": "ug", "text": "x" * 21, "op": "translate"}]))
    table = table.set_column(table.column_names.index("src_text"), "src_text", pa.array(["y" * 64]))
    assert LengthRatioFilter(0.33, 3.0).reasons(table) == ["length_ratio: 21/64 characters = 0.328 < 0.33"]


def test_summary_of_an_output_without_translation_reads_no_rejects(tmp_path: Path):
    from lrl.generate.translate.checks import translation_warnings

    assert translation_warnings(str(tmp_path / "nowhere"), {"steps": ["augment"], "rows_per_op": {}}) == []


def _cfg(tmp_path: Path, *extra: str):
    (tmp_path / "sw.conll").write_text(ROWS, encoding="utf-8")
    return load_job(None, [f"data.root={tmp_path}", "data.ner=[{path: sw.conll, lang: sw}]",
                           f"output.root={tmp_path / 'runs'}", "translate.enabled=true",
                           "translate.train={sources: [sw], target: ug, model: {model: x}}", *extra])


def test_a_missing_relative_model_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    """``models/opus-mt-sw-ug`` (one slash, no such folder) went to the actors as a hub id and
    failed there: 700 lines of traceback, 83 s of retries online. Now one line, on the driver,
    before Ray: where it was looked for, and why the hub cannot give it."""
    from huggingface_hub import constants

    from lrl.config import ConfigError
    from lrl.generate.stage import check_translation
    from lrl.generate.translate import preflight

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    preflight.hub_problem.cache_clear()
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(tmp_path, "translate.train.model.model=models/opus-mt-sw-ug")
    with pytest.raises(ConfigError) as exc:
        check_translation(cfg)
    msg = str(exc.value)
    assert msg.startswith("translate.train.model.model: 'models/opus-mt-sw-ug' is neither a folder (not found at "
                          f"{tmp_path}/models/opus-mt-sw-ug (under data.root={tmp_path}")
    assert "nor a model on the Hugging Face hub (HF_HUB_OFFLINE is set and the local Hugging Face cache" in msg
    with pytest.raises(ConfigError, match=r"'\./models/x' does not exist: not found at "):
        check_translation(_cfg(tmp_path, "translate.train.model.model=./models/x"))


def test_a_language_code_the_model_lacks_fails_on_the_driver(tmp_path):
    """NLLB with ``sw`` (``swh_Latn``, not in the vocabulary) was found only inside the actor
    (ActorDiedError, ~200 lines), though its message was good: now the driver says it."""
    from test_translate_codes import _tiny_nllb

    from lrl.config import ConfigError
    from lrl.generate.stage import check_translation

    model = tmp_path / "nllb"
    _tiny_nllb(model)
    check_translation(_cfg(tmp_path, f"translate.train.model.model={model}", "translate.train.model.max_length=8"))
    with pytest.raises(ConfigError, match=r"translate\.train\.model: .*target language code 'wol_Latn' \(for 'wo'\) "
                                          r"is not in its vocabulary; set tgt_code"):
        check_translation(_cfg(tmp_path, f"translate.train.model.model={model}", "translate.train.model.max_length=8",
                               "translate.train.target=wo"))


def test_dry_runs_check_the_translation_models_as_the_run_does(tmp_path, monkeypatch):
    """``lrl generate JOB --dry-run`` and ``lrl run JOB --dry-run`` said nothing of a misspelt model
    folder: the driver-side checks ran only when the stage did. Dry runs make them now (a model's
    config and tokenizer, never its weights), unless the folder is finished (the run reuses it)."""
    from lrl.config import ConfigError
    from lrl.generate.stage import stage_output
    from lrl.pipeline.plan import stage_plan
    from lrl.pipeline.runner import plan

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sw.conll").write_text(ROWS, encoding="utf-8")
    cfg = _cfg(tmp_path, "translate.train.model.model=./models/opus-mt-sw-ug", "pipeline.stages=[generate,tokenizer]")
    for dry_run in (lambda: stage_plan(cfg, "generate"), lambda: plan(cfg)):
        with pytest.raises(ConfigError, match=r"^translate\.train\.model\.model: '\./models/opus-mt-sw-ug' does not "
                                              rf"exist: not found at {tmp_path}/models/opus-mt-sw-ug"):
            dry_run()
    done = Path(stage_output(cfg).path)
    done.mkdir(parents=True)
    (done / "manifest.json").write_text("{}")
    assert f"# output: {done} (finished: reused at once" in stage_plan(cfg, "generate")
    assert f"generate   run  -> {done} (finished: reused at once)" in plan(cfg)
