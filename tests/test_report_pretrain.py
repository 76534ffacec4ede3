"""The report's pretraining section: the language mixture of a multilingual run."""

from __future__ import annotations

import json
import re

from lrl.job import load_job


def test_pretrain_section_shows_the_language_mixture(tmp_path):
    """metrics.json records per language the training rows, the target share p ∝ n^alpha, the
    realised share of the stream and the token share training saw (``target_mixture``,
    ``stream_mixture``); the report's pretraining table kept numbers only, so a multilingual job's
    report (jobs/multilingual.yaml) showed alpha but not one language's share."""
    import pyarrow as pa

    from lrl.data.sampling import resample
    from lrl.evaluate.report import build_html

    rows = {"ug": 5318, "wo": 1352, "yo": 570}
    table = pa.table({"text": ["x"] * sum(rows.values()),
                      "lang": [lang for lang, n in rows.items() for _ in range(n)]})
    _, mixture = resample(table, 0.3, 0)
    pt = tmp_path / "pretrain"
    pt.mkdir()
    (pt / "metrics.json").write_text(json.dumps({
        "step": 20, "alpha": 0.3, "loss": 7.4, "target_mixture": mixture.as_dict(), "train_rows": rows,
        "heldout_rows": {"ug": 674, "wo": 146, "yo": 28},
        "stream_mixture": {"ug": {"sequences": 144, "tokens": 9216, "token_share": 0.4513},
                           "wo": {"sequences": 126, "tokens": 8005, "token_share": 0.3920},
                           "yo": {"sequences": 50, "tokens": 3200, "token_share": 0.1567}}}))
    text = build_html(load_job(None).report, {"pretrain": str(pt)})
    weights = {lang: n ** 0.3 for lang, n in rows.items()}
    for lang, n in rows.items():
        p = weights[lang] / sum(weights.values())
        sampled = mixture.sampled[lang]
        share = {"ug": 0.4513, "wo": 0.3920, "yo": 0.1567}[lang]
        assert re.search(rf"<td>{lang}</td><td>{n}</td><td>\d+</td><td>{sampled}</td><td>{p:.3f}</td>"
                         rf"<td>{sampled / sum(mixture.sampled.values()):.3f}</td><td>{share:.3f}</td>", text), lang
    assert "p ∝ n^0.3" in text


def test_pretrain_section_without_a_mixture_has_no_mixture_table(tmp_path):
    """An older metrics.json (no mixture recorded) still draws its section, without the table."""
    from lrl.evaluate.report import build_html

    pt = tmp_path / "pretrain"
    pt.mkdir()
    (pt / "metrics.json").write_text(json.dumps({"step": 20, "loss": 7.4}))
    text = build_html(load_job(None).report, {"pretrain": str(pt)})
    assert "Language mixture" not in text and "<td>loss</td><td>7.4</td>" in text


def test_confusions_name_their_model_and_say_which_were_not_drawn(tmp_path):
    """The report draws at most 8 confusion matrices. The multilingual job with the test splits
    WikiANN has (am, ig, rw, sw, yo) evaluates 12 model/split pairs: sorted by name, ug, wo and yo
    were left out without a word, and a table's model and split were named only inside its image."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lrl.evaluate.report import build_html

    ev = tmp_path / "evaluate"
    pairs = [(lang, split) for lang in ("am", "ig", "rw", "sw", "ug", "wo", "yo")
             for split in ("dev", "test") if split == "dev" or lang not in ("ug", "wo")]
    assert len(pairs) == 12
    for lang, split in pairs:
        (ev / "predictions" / lang).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"tags": [["B-PER", "O"]], "pred": [["B-PER", "O"]]}),
                       ev / "predictions" / lang / f"{split}.parquet")
    text = build_html(load_job(None).report, {"evaluate": str(ev)})
    assert text.count('alt="confusion ') == 8
    assert "<h3>am [dev]</h3>" in text and "<h3>sw [test]</h3>" in text
    assert "4 more not drawn (at most 8): ug [dev], wo [dev], yo [dev], yo [test]" in text
