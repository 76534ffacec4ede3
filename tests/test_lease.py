"""Object-store output roots against a local S3 server (``s3_store``): stage folders written in
place and committed by their manifest, and the lease that keeps two runs out of one folder."""

from __future__ import annotations

import threading
import time

import pyarrow.fs as pafs
import pytest

from lrl.data import lease as lease_mod
from lrl.data.output import RootBusy, StageOutput
from lrl.data.root_lock import root_lock

FAST = {"ttl": 3.0, "renew": 0.2, "settle": 0.05}


@pytest.fixture
def fast_leases(monkeypatch):
    """Leases that renew every 0.2 s and expire after 3 s (10 s and 60 s in use)."""
    monkeypatch.setattr(lease_mod, "TTL_S", FAST["ttl"])
    monkeypatch.setattr(lease_mod, "RENEW_S", FAST["renew"])
    monkeypatch.setattr(lease_mod, "SETTLE_S", FAST["settle"])


def _lease(uri: str) -> lease_mod.Lease:
    return lease_mod.Lease(uri, "test", RootBusy, **FAST)


def _exists(uri: str) -> bool:
    fs, inner = pafs.FileSystem.from_uri(uri)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def _write(uri: str, data: bytes = b"rows") -> None:
    fs, inner = pafs.FileSystem.from_uri(uri)
    with fs.open_output_stream(inner) as f:
        f.write(data)


def test_a_stage_commits_in_place_and_a_killed_runs_leftovers_are_cleared(s3_store, fast_leases):
    """Arrow's S3 cannot rename a prefix, so stages write their final folder in place and the
    manifest, written last, marks it finished; a folder without one is never taken as finished."""
    root = s3_store.bucket() + "/runs"
    out = StageOutput(root, "generate", {"x": 1})
    assert out.in_place and out.tmp == out.path
    _write(f"{out.tmp}/data/part-1.parquet")
    assert not out.done  # written, not committed
    assert out.commit({"rows": 1}) == out.path and out.done and out.manifest()["rows"] == 1
    assert _exists(f"{out.path}/data/part-1.parquet")
    assert not _exists(f"{root}/.generate-{out.hash}.lock")  # the lease is given back

    killed = StageOutput(root, "generate", {"x": 2})
    _write(f"{killed.tmp}/data/stale.parquet")
    killed._lease._stop.set()  # killed: nothing renews or removes its lease
    killed._lease._thread.join()
    retry = StageOutput(root, "generate", {"x": 2})
    t0 = time.monotonic()
    assert not _exists(f"{retry.tmp}/data/stale.parquet")
    assert time.monotonic() - t0 >= FAST["ttl"] * 0.9  # it waited the killed run's lease out
    retry.abort()
    assert not retry.done and not _exists(f"{root}/.generate-{retry.hash}.lock")


def test_a_second_run_of_a_stage_stops_while_the_first_writes_its_folder(s3_store, fast_leases):
    """Before the lease, the second run deleted the first's in-place folder while it was written."""
    root = s3_store.bucket() + "/runs"
    first, second = (StageOutput(root, "generate", {"x": 1}) for _ in range(2))
    _write(f"{first.tmp}/data/a.parquet")
    with pytest.raises(RootBusy, match="which is running"):
        second.tmp  # noqa: B018 (the property takes the lease)
    assert _exists(f"{first.path}/data/a.parquet")  # untouched
    first.commit({"run": "first"})
    assert second.done and second.manifest()["run"] == "first"


def test_the_loser_of_a_simultaneous_start_stops(s3_store):
    """Both read no lease and wrote one; the store keeps the later record, and the run whose
    record is gone stops instead of both writing the folder."""
    uri = s3_store.bucket() + "/runs/.x.lock"
    a, b = _lease(uri), _lease(uri)
    write = a._write

    def both_write():
        write()
        b._write()  # b read no lease too, and wrote just after a

    a._write = both_write
    with pytest.raises(RootBusy, match="taken at the same moment"):
        a.acquire()
    b.acquire()  # its own record is there: it goes on
    b.release()
    assert not _exists(uri)


def _take_over(root: str, out: StageOutput) -> StageOutput:
    """Another run that took ``out``'s lease over: it clears the folder and writes its own."""
    other = StageOutput(root, out.stage, {"x": 1})
    other._lease = _lease(f"{root}/.{out.stage}-{out.hash}.lock")
    other._lease._write()
    fs, inner = pafs.FileSystem.from_uri(out.path)
    fs.delete_dir(inner)
    fs.create_dir(inner)
    _write(f"{out.path}/.lrl-writer.json", f'{{"lease": "{other._lease.id}"}}'.encode())
    _write(f"{out.path}/data/theirs.parquet")
    other._tmp = out.path
    return other


def test_a_run_whose_lease_was_taken_over_leaves_the_folder_to_the_taker(s3_store, fast_leases):
    """The run that lost its lease (it stalled past the ttl) aborted by deleting the folder the
    taker was writing, which the taker then marked finished with files missing."""
    root = s3_store.bucket() + "/runs"
    out = StageOutput(root, "generate", {"x": 1})
    _write(f"{out.tmp}/data/mine.parquet")
    other = _take_over(root, out)
    deadline = time.monotonic() + 5
    while not out._lease.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out._lease.lost
    with pytest.raises(RootBusy, match="took over this stage's lease"):
        out.commit({"rows": 1})
    assert not out.done and _exists(f"{out.path}/data/theirs.parquet")
    out.abort()  # nothing of the taker's is removed either
    assert _exists(f"{out.path}/data/theirs.parquet")
    assert other.commit({"run": "other"}) == out.path and out.manifest()["run"] == "other"


def _stall(out: StageOutput) -> None:
    """``out``'s run stops renewing (a paused VM, Ctrl-Z): its renewal thread ends."""
    out._lease._stop.set()
    out._lease._thread.join()


def test_after_a_late_renewal_the_taker_commits_and_the_stalled_run_does_not(s3_store, fast_leases):
    """A renewal that hung in the store's retries past the ttl lands after the taker's record and
    overwrites it. The stalled run must not commit (the taker cleared its folder), and the taker
    must go on: it had found another id in the lease, given up, and neither run committed."""
    root = s3_store.bucket() + "/runs"
    out = StageOutput(root, "generate", {"x": 1})
    _write(f"{out.tmp}/data/mine.parquet")
    _stall(out)
    taker = StageOutput(root, "generate", {"x": 1})
    _write(f"{taker.tmp}/data/theirs.parquet")  # waited the stalled lease out, cleared the folder
    assert not _exists(f"{out.path}/data/mine.parquet")
    out._lease._write()  # the late renewal: the lease names the stalled run again
    time.sleep(4 * FAST["renew"])  # the taker's renewals see it
    assert not taker._lease.lost
    with pytest.raises(RootBusy, match="took over this stage's lease"):
        out.commit({"rows": 1})
    assert taker.commit({"run": "taker"}) == taker.path and taker.manifest()["run"] == "taker"
    assert _exists(f"{taker.path}/data/theirs.parquet")


def test_a_waiter_whose_reads_fail_does_not_take_over_a_live_lease(s3_store, fast_leases):
    """Failed reads were skipped while waiting, and at the end of the ttl the waiter took over a
    lease that was renewed all along, deleting its holder's folder."""
    root = s3_store.bucket() + "/runs"
    holder = StageOutput(root, "generate", {"x": 1})
    _write(f"{holder.tmp}/data/a.parquet")
    waiter = _lease(f"{root}/.generate-{holder.hash}.lock")
    waiter._fs = _FlakyStore(waiter._fs, reads=1000)
    waiter._fs.reads = 0  # the first look (a live lease) succeeds, the rest fail
    seen = waiter._read()
    waiter._fs.reads = 1000
    with pytest.raises(RootBusy, match="cannot be read"):
        waiter._wait_out(seen)
    assert _exists(f"{holder.path}/data/a.parquet") and not holder._lease.lost
    holder.abort()


class _FlakyStore:
    """The store of a lease whose next ``reads`` reads fail (a timeout, a 503)."""

    def __init__(self, fs, reads: int):
        self._fs, self.reads = fs, reads

    def open_input_stream(self, path):
        if self.reads > 0:
            self.reads -= 1
            raise OSError("When reading information for key 'x': AWS Error NETWORK_CONNECTION")
        return self._fs.open_input_stream(path)

    def __getattr__(self, name):
        return getattr(self._fs, name)


def test_a_failed_read_of_the_lease_does_not_lose_it(s3_store, fast_leases):
    """One failed GET made the renewals take the lease for another run's, and the run's commit
    then refused (and removed) a long run's output."""
    root = s3_store.bucket() + "/runs"
    out = StageOutput(root, "generate", {"x": 1})
    _write(f"{out.tmp}/data/mine.parquet")
    flaky = _FlakyStore(out._lease._fs, reads=2)
    out._lease._fs = flaky
    deadline = time.monotonic() + 5
    while flaky.reads and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3 * FAST["renew"])  # renewals after the failed ones
    assert not flaky.reads and not out._lease.lost
    assert out.commit({"rows": 1}) == out.path and out.done


def test_root_lock_keeps_a_second_run_of_a_job_off_an_s3_root(s3_store, fast_leases):
    root = s3_store.bucket() + "/runs"
    with root_lock(root, "demo"):
        with pytest.raises(RootBusy, match="job 'demo' is already running"):
            with root_lock(root, "demo", "lrl pretrain"):
                pass
        with root_lock(root, "other"):  # another job on the same root goes on
            pass
    assert not _exists(f"{root}/.lrl-demo.lock")
    done = threading.Event()

    def again():
        with root_lock(root, "demo"):
            done.set()

    t = threading.Thread(target=again)
    t.start()
    t.join(10)
    assert done.is_set()  # given back: the next run takes it at once


def test_a_second_pretrain_run_stops_before_it_touches_the_run_folder(s3_store, fast_leases, tmp_path, monkeypatch):
    """The run folder and its initial model were made before the stage's lease was taken: a second
    run of the same hash could remove the initial model the first was still uploading."""
    from pretrain_jobs import _job

    from lrl.job import load_job
    from lrl.pipeline.stage import StageContext
    from lrl.train.pretrain import run_pretrain, stage_output

    root = s3_store.bucket() + "/runs"
    monkeypatch.chdir(tmp_path)
    ctx = StageContext(load_job(_job(tmp_path, {"steps": 2}), [f"output.root={root}"]))
    first, _, _ = stage_output(ctx)
    _write(f"{first.tmp}/placeholder")  # the first run holds the stage's lease
    with pytest.raises(RootBusy, match="which is running"):
        run_pretrain(ctx)
    assert not _exists(f"{root}/.pretrain-{first.hash}.ray")
    first.abort()
