"""Temperature-balanced sampling (p ∝ n^alpha) and document-level held-out slices."""

import pyarrow as pa
import pytest

from lrl.data.sampling import covering_total, resample, split_heldout, target_counts, temperature_probs


def _table(counts: dict[str, int], docs_per_lang: int = 10) -> pa.Table:
    rows = [{"text": f"{lang} {i}", "lang": lang, "doc": f"{lang}-d{i % docs_per_lang}"}
            for lang, n in counts.items() for i in range(n)]
    return pa.Table.from_pylist(rows)


def test_probs_follow_n_to_the_alpha():
    p = temperature_probs({"ug": 9000, "wo": 1000}, 0.5)
    assert p["ug"] == pytest.approx(3 / 4) and p["wo"] == pytest.approx(1 / 4)
    assert temperature_probs({"a": 5, "b": 5}, 0.3) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError):
        temperature_probs({"a": 1}, 0.0)


def test_target_counts_sum_to_total():
    t = target_counts({"ug": 7438, "wo": 1181, "yo": 100}, 0.3, 1001)
    assert sum(t.values()) == 1001 and t["ug"] > t["wo"] > t["yo"]


@pytest.mark.parametrize("alpha", [0.3, 0.7, 1.0])
def test_resampled_mixture_matches_target(alpha):
    counts = {"ug": 4000, "wo": 600, "yo": 50}
    table = _table(counts)
    out, mix = resample(table, alpha, seed=1)
    # The stream is read again every epoch: a language cut below its rows lost the same rows in
    # every epoch (alpha 0.3 on mono ug + wo: 26.6% of ug never trained). Every row is in it now,
    # and no longer a stream than that needs.
    assert set(out["text"].to_pylist()) == set(table["text"].to_pylist())
    assert out.num_rows == covering_total(counts, alpha) >= sum(counts.values())
    assert alpha < 1 or out.num_rows == sum(counts.values())  # alpha 1: the rows themselves
    shorter = target_counts(counts, alpha, out.num_rows - 1)
    assert any(shorter[k] < n for k, n in counts.items())  # one row fewer would leave one out
    counted = {d["values"]: d["counts"] for d in pa.compute.value_counts(out["lang"]).to_pylist()}
    realised = {k: v / out.num_rows for k, v in counted.items()}
    expected = {k: v ** alpha for k, v in counts.items()}
    norm = sum(expected.values())
    for lang in counts:
        assert realised[lang] == pytest.approx(expected[lang] / norm, abs=0.005)
        assert mix.as_dict()[lang]["target_p"] == pytest.approx(expected[lang] / norm, abs=1e-6)
    # every sampled row is a real row of that language, and the small language is repeated
    assert set(out["text"].to_pylist()) <= set(table["text"].to_pylist())


def test_resample_is_deterministic_and_shuffled():
    table = _table({"ug": 300, "wo": 30})
    a, _ = resample(table, 0.3, seed=5, total=200)
    b, _ = resample(table, 0.3, seed=5, total=200)
    c, _ = resample(table, 0.3, seed=6, total=200)
    assert a["text"].to_pylist() == b["text"].to_pylist() != c["text"].to_pylist()
    langs = a["lang"].to_pylist()
    assert langs != sorted(langs)  # languages interleaved, not in blocks


def test_heldout_is_whole_documents_per_language():
    table = _table({"ug": 400, "wo": 100}, docs_per_lang=20)
    train, held = split_heldout(table, 0.1, seed=0)
    assert train.num_rows + held.num_rows == table.num_rows
    assert not set(train["doc"].to_pylist()) & set(held["doc"].to_pylist())
    for lang, n in (("ug", 400), ("wo", 100)):
        k = sum(1 for x in held["lang"].to_pylist() if x == lang)
        assert 0.1 * n <= k <= 0.1 * n + n / 20  # at least the fraction, at most one doc more


def test_heldout_keeps_one_training_document():
    table = _table({"ug": 10}, docs_per_lang=1)
    train, held = split_heldout(table, 0.4, seed=0)
    assert train.num_rows == 10 and held.num_rows == 0


def test_heldout_never_repeats_training_text():
    # Real corpora repeat lines across documents (Wikipedia boilerplate, articles copied under
    # another title): whole-document holding out alone let 9% of held-out Uyghur rows be
    # training text. Such rows leave the held-out slice; training keeps every row.
    rows = [{"text": "shared line" if i < 10 else f"ug {i}", "lang": "ug", "doc": f"d{i % 10}"}
            for i in range(200)]  # every document has the shared line
    rows += [{"text": "shared line", "lang": "wo", "doc": "w0"}, {"text": "wo 1", "lang": "wo", "doc": "w1"}]
    table = pa.Table.from_pylist(rows)
    train, held = split_heldout(table, 0.2, seed=0)
    assert train.num_rows == 202 - 40 - 1  # 2 of 10 ug documents held out, wo's "w0" too
    # the ug shared lines left the slice; wo's "shared line" stays (no wo training row has it)
    assert held.num_rows == 40 - 2 + 1
    seen = set(zip(train["lang"].to_pylist(), train["text"].to_pylist()))
    assert held.num_rows > 0
    assert not seen & set(zip(held["lang"].to_pylist(), held["text"].to_pylist()))
    assert not set(train["doc"].to_pylist()) & set(held["doc"].to_pylist())


def test_heldout_on_real_text_has_no_training_lines(data_root):
    from lrl.data.config import TextSource
    from lrl.data.readers import read_text_lines

    table = read_text_lines(TextSource(path="mono/wo.txt", lang="wo"), str(data_root))
    train, held = split_heldout(table, 0.05, seed=0)
    assert held.num_rows > 300
    assert not set(train["text"].to_pylist()) & set(held["text"].to_pylist())
