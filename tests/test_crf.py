"""The CRF head's Viterbi decoding: exact against brute force, and one host copy per batch."""

from __future__ import annotations

import itertools

import torch

from lrl.model.crf import CRF


@torch.no_grad()
def _brute_force(crf: CRF, em: torch.Tensor, n: int) -> list[int]:
    """The best path of one row by scoring every label sequence of length ``n``."""
    best, best_path = None, None
    for path in itertools.product(range(crf.num_labels), repeat=n):
        s = crf.start[path[0]] + em[0, path[0]] + crf.end[path[-1]]
        for t in range(1, n):
            s = s + crf.trans[path[t - 1], path[t]] + em[t, path[t]]
        if best is None or s > best:
            best, best_path = float(s), list(path)
    return best_path  # type: ignore[return-value]


def test_viterbi_matches_brute_force_on_ragged_batches():
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        for p in (crf.start, crf.end, crf.trans):
            p.normal_()
    lengths = [5, 1, 3, 4]
    em = torch.randn(len(lengths), 5, 3)
    mask = torch.tensor([[t < n for t in range(5)] for n in lengths])
    got = crf.decode(em, mask)
    assert [len(p) for p in got] == lengths
    assert got == [_brute_force(crf, em[i], n) for i, n in enumerate(lengths)]


def test_viterbi_reads_the_device_once_per_batch_not_once_per_word(monkeypatch):
    """On a GPU every ``int(tensor)`` or ``.item()`` waits for the device: the backtrack used to
    make one such read per word. Count host reads while decoding a 40-word batch."""
    reads = {"n": 0}
    for name in ("__int__", "item", "tolist", "__index__"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, **k):
            reads["n"] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    crf = CRF(5)
    em = torch.randn(4, 40, 5)
    mask = torch.ones(4, 40, dtype=torch.bool)
    paths = crf.decode(em, mask)
    assert [len(p) for p in paths] == [40] * 4
    assert reads["n"] <= 3, f"{reads['n']} host reads for one batch"


BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _valid_bio(path: list[int]) -> bool:
    prev = "O"
    for i in path:
        tag = BIO[i]
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def test_bio_labels_close_the_transitions_that_make_no_span():
    """Unconstrained, Viterbi gave ``I-`` after ``O`` (a CRF on WikiANN ug dev: 51.8 span F1 strict,
    49.5 in seqeval's default mode). With BIO labels every decoded path is valid BIO, and the
    best valid path is the brute-force best among valid paths; other label sets stay open."""
    torch.manual_seed(0)
    crf = CRF(len(BIO), BIO)
    with torch.no_grad():
        crf.trans.normal_()
        crf.trans[0, 2] = crf.trans[0, 4] = 5.0  # the old decoder's favourites: O -> I-
        crf.start[2] = 5.0
    em = torch.randn(16, 4, len(BIO))
    em[:, :, 2] += 2.0  # I-PER everywhere
    mask = torch.ones(16, 4, dtype=torch.bool)
    paths = crf.decode(em, mask)
    assert all(_valid_bio(p) for p in paths)
    for i in range(4):  # the best of the valid paths, scored without the penalties
        best: float | None = None
        best_path = None
        for path in itertools.product(range(len(BIO)), repeat=4):
            if not _valid_bio(list(path)):
                continue
            with torch.no_grad():
                s = float(crf.start[path[0]] + em[i, 0, path[0]] + crf.end[path[-1]]
                          + sum(crf.trans[path[t - 1], path[t]] + em[i, t, path[t]] for t in range(1, 4)))
            if best is None or s > best:
                best, best_path = s, list(path)
        assert paths[i] == best_path
    open_crf = CRF(len(BIO))  # no labels given (or not BIO): nothing closed
    open_crf.load_state_dict(crf.state_dict())  # the penalties are not in the state dict
    assert not all(_valid_bio(p) for p in open_crf.decode(em, mask))
    # Training sees the same closed paths: the likelihood of a valid sequence is finite and a
    # proper probability (summing over the valid sequences of length 2 gives 1).
    em2 = torch.randn(1, 2, len(BIO))
    with torch.no_grad():
        total = sum(torch.exp(-crf.nll(em2, torch.tensor([list(p)]), torch.ones(1, 2, dtype=torch.bool)))
                    for p in itertools.product(range(len(BIO)), repeat=2) if _valid_bio(list(p)))
    assert abs(float(total) - 1.0) < 1e-4


def _valid_after_any(path: list[int]) -> bool:
    """Valid BIO inside the row; its first label may be ``I-X`` (a chunk continuing a sentence)."""
    return _valid_bio([BIO.index(f"B-{BIO[path[0]][2:]}") if BIO[path[0]].startswith("I-") else path[0], *path[1:]])


def test_a_chunk_that_continues_a_sentence_may_start_inside_an_entity():
    """A long sentence cut at a word inside an entity gives a chunk whose gold path starts with
    ``I-X``. With the start closed for every row, that path lay outside the partition: the NLL
    had no floor (WikiANN ug in 12-piece chunks trained to -22.9), and the decoder split each
    entity cut by a chunk boundary in two. ``open_start`` rows start anywhere; the others do not."""
    torch.manual_seed(0)
    crf = CRF(len(BIO), BIO)
    with torch.no_grad():
        crf.trans.normal_()
    em = torch.randn(2, 3, len(BIO))
    em[:, 0, 2] += 8.0  # I-PER first, strongly
    mask = torch.ones(2, 3, dtype=torch.bool)
    first, later = crf.decode(em, mask, torch.tensor([False, True]))
    assert BIO[first[0]] != "I-PER" and BIO[later[0]] == "I-PER" and _valid_after_any(later)
    gold = torch.tensor([[2, 2, 0]])  # I-PER I-PER O
    one = torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        assert float(crf.nll(em[1:], gold, one, torch.tensor([True]))) > 0  # a likelihood again
        assert float(crf.nll(em[1:], gold, one, torch.tensor([False]))) < 0  # the old, floorless case
        # open rows: a proper probability over every path valid after any start
        total = sum(torch.exp(-crf.nll(em[1:], torch.tensor([list(p)]), one, torch.tensor([True])))
                    for p in itertools.product(range(len(BIO)), repeat=3) if _valid_after_any(list(p)))
    assert abs(float(total) - 1.0) < 1e-4
