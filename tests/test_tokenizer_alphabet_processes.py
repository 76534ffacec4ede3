"""The same text gives the same tokenizer ids in another process (``lrl.model.alphabet``).

``test_tokenizer_alphabet.test_the_alphabet_is_the_same_on_every_training`` trains twice in one
process, where Python's set and dict order of strings is the same both times: an alphabet listed
in set order (unsorted) passed it while a rerun of the stage, in a new process with another
``PYTHONHASHSEED``, numbered the punctuation otherwise. Trained here in two processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

_TRAIN = """
import hashlib, json, sys
from pathlib import Path
from lrl.model.config import TokenizerConfig
from lrl.model.tokenizer import train_tokenizer
root = Path(sys.argv[1])
def lines(p):
    return [x for x in (root / p).read_text(encoding="utf-8").splitlines()[:200] if x.strip()]
tok = train_tokenizer({"am": lines("mono/am.txt"), "yo": lines("mono/yo.txt")},
                      TokenizerConfig(type=sys.argv[2], vocab_size=1500, min_frequency=2))
print(json.dumps(sorted(tok.get_vocab().items())))
"""


def _vocab(data_root: Path, hash_seed: str, kind: str = "wordpiece") -> list:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "RAYON_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _TRAIN, str(data_root), kind], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_same_text_gives_the_same_ids_in_another_process(data_root):
    first, second = _vocab(data_root, "1"), _vocab(data_root, "2")
    marks = {t: i for t, i in first if t in "፣፤”“"}
    assert len(marks) == 4  # punctuation the text lacks, in the vocabulary: what the test is about
    assert hashlib.sha256(json.dumps(first).encode()).digest() == hashlib.sha256(json.dumps(second).encode()).digest()


def test_a_unigram_tokenizer_gets_the_same_ids_in_another_process(data_root):
    """Unigram's trainer numbers pieces by scores that differ in their last bits between runs, and
    the characters it appends in hash-map order: four trainings on am + yo text gave the same
    pieces under 86-119 different ids. ``lrl.model.unigram_order.stable_unigram`` orders them."""
    first, second = _vocab(data_root, "1", "unigram"), _vocab(data_root, "3", "unigram")
    assert len(first) > 500 and any(t.startswith("\u2581") for t, _ in first)  # a real Unigram vocabulary
    assert first == second
