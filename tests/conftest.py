"""Shared fixtures: one session-scoped Ray, the shared data root, offline defaults.

Ray and torch are imported lazily so that tests which need neither stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
# Ray Train blocks ~2 s per report at the default health-check interval (DESIGN.md).
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject addopts): a process per core, at most 4. Each starts its own local
    Ray (``ray_session``, num_cpus=2, as on the 2-core CI machine): more of them would add memory
    and start-up more than they overlap waiting."""
    return max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared real data (../shared/data beside the repo, or $LRL_DATA_ROOT)."""
    root = Path(os.environ.get("LRL_DATA_ROOT", REPO.parent / "shared" / "data"))
    if not (root / "wikiann").is_dir():
        pytest.skip(f"shared data not found at {root} (set LRL_DATA_ROOT)")
    return root


@pytest.fixture(scope="session")
def s3_store():
    """A local S3 server (moto) for object-store output roots; ``s3_store.bucket()`` makes a new
    bucket. Started before Ray so that Ray's workers inherit its endpoint (``ray_session``)."""
    from s3_store import S3Store

    store = S3Store()
    yield store
    store.stop()


@pytest.fixture(scope="session")
def ray_session(s3_store):
    """One local Ray for the whole session (a per-test init costs 3-5 s). After ``s3_store``:
    workers take the environment Ray started with."""
    import ray

    if not ray.is_initialized():
        from lrl.ray_token import ensure_token_file

        # The test processes (pytest -n) start their Rays at once: on a machine without
        # ~/.ray/auth_token each Ray wrote its own there (lrl.ray_token).
        ensure_token_file()
        # address="local": always our own Ray, even when a `ray start` cluster of another user
        # runs on this machine (ray.init() would join it and then refuse num_cpus).
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def wikiann_slice(data_root, tmp_path):
    """``slice(lang, n)``: the path of a CoNLL file with the first ``n`` sentences of WikiANN
    ``lang`` train, written under this test's ``tmp_path``."""
    def make(lang: str, n: int) -> str:
        blocks = (data_root / "wikiann" / lang / "train").read_text(encoding="utf-8").split("\n\n")[:n]
        out = tmp_path / "in" / f"{lang}.conll"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        return str(out)

    return make


@pytest.fixture(scope="session")
def en_ug_tokenizers():
    """(base, extended): a WordPiece tokenizer trained on tiny English text, and the same extended
    with Uyghur pieces (``lrl.model.extend``)."""
    from tiny_corpora import EN, UG

    from lrl.model.config import TokenizerConfig
    from lrl.model.extend import extend_tokenizer
    from lrl.model.tokenizer import train_tokenizer

    base = train_tokenizer({"en": EN}, TokenizerConfig(vocab_size=80, min_frequency=1))
    ext, _ = extend_tokenizer(base, {"ug": UG}, TokenizerConfig(mode="extend", base="x", vocab_size=60,
                                                                min_frequency=1))
    return base, ext
