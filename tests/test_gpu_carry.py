"""benchmarks/gpu_carry.py: what travels to the GPU machine unpacks into an importable tree."""

from __future__ import annotations

import lzma
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import gpu_carry  # noqa: E402  (a benchmark script, not a package: imported from its folder)


def _wheel(path: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, data)
    return path


def test_stripped_ray_tree_drops_the_java_and_web_parts_and_keeps_binaries_executable(tmp_path):
    wheel = _wheel(tmp_path / "ray-0-py3-none-any.whl", {
        "ray/__init__.py": (b"X = 1\n", 0o644),
        "ray/core/src/ray/raylet/raylet": (b"\x7fELF", 0o755),
        "ray/jars/ray_dist.jar": (b"jar", 0o644),
        "ray/dashboard/client/build/index.html": (b"<html>", 0o644),
        "ray/dashboard/modules/x.py": (b"", 0o644),
        "ray-0.dist-info/METADATA": (b"Name: ray\nVersion: 0\n", 0o644),
    })
    gpu_carry.strip_wheel(wheel, tmp_path / "ray.tar.xz")
    with tarfile.open(tmp_path / "ray.tar.xz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"ray/__init__.py", "ray/core/src/ray/raylet/raylet", "ray/dashboard/modules/x.py",
                            "ray-0.dist-info/METADATA"}
    assert members["ray/core/src/ray/raylet/raylet"].mode & stat.S_IXUSR
    assert not members["ray/__init__.py"].mode & stat.S_IXUSR


def test_unpack_installs_wheels_and_the_tree_and_writes_the_text(tmp_path):
    carry = tmp_path / "carry"
    (carry / "wheels").mkdir(parents=True)
    (carry / "mono").mkdir()
    _wheel(carry / "wheels" / "lrlprobe-1.0-py3-none-any.whl", {
        "lrlprobe/__init__.py": (b"VALUE = 42\n", 0o644),
        "lrlprobe-1.0.dist-info/METADATA": (b"Metadata-Version: 2.1\nName: lrlprobe\nVersion: 1.0\n", 0o644),
        "lrlprobe-1.0.dist-info/WHEEL": (b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n", 0o644),
        "lrlprobe-1.0.dist-info/RECORD": (b"", 0o644),
    })
    gpu_carry.strip_wheel(_wheel(tmp_path / "fakeray.whl", {"fakeray/__init__.py": (b"OK = True\n", 0o644)}),
                          carry / "ray-site.tar.xz")
    with lzma.open(carry / "mono" / "ug.txt.xz", "wt", encoding="utf-8") as f:
        f.write("بىر\nئىككى\n")

    site, data = tmp_path / "site", tmp_path / "data"
    gpu_carry.unpack(carry, site, data)
    assert (data / "mono" / "ug.txt").read_text(encoding="utf-8") == "بىر\nئىككى\n"
    out = subprocess.run([sys.executable, "-c", "import lrlprobe, fakeray; print(lrlprobe.VALUE, fakeray.OK)"],
                         env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["42", "True"]


def _run_gpu_pretrain(tmp_path: Path, pretrain: str) -> subprocess.CompletedProcess:
    """benchmarks/gpu_pretrain.sh with a stand-in ``python3`` (CUDA seen, Ray present): the
    stand-in runs ``pretrain`` (bash) where the real one would run benchmarks/pretrain_real.py."""
    bin_dir, run, out = tmp_path / "bin", tmp_path / "run", tmp_path / "out"
    bin_dir.mkdir()
    out.mkdir()
    stub = bin_dir / "python3"
    stub.write_text("#!/usr/bin/env bash\n"
                    'case "$1" in benchmarks/pretrain_real.py) ;; *) exit 0 ;; esac\n'
                    'while [ $# -gt 0 ]; do [ "$1" = --out ] && RUNDIR="$2"; shift; done\n' + pretrain)
    stub.chmod(0o755)
    script = Path(gpu_carry.ROOT) / "benchmarks" / "gpu_pretrain.sh"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUN": str(run), "OUT": str(out),
           "MINUTES": "1"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)


def test_gpu_pretrain_brings_the_log_back_when_the_run_fails(tmp_path):
    """With ``set -e`` a failed run ended the script before it copied anything to $OUT: the log
    that says why stayed on the GPU machine, which is given back after the call."""
    res = _run_gpu_pretrain(tmp_path, 'echo "RuntimeError: worker died"; exit 1\n')
    assert res.returncode != 0
    assert "worker died" in (tmp_path / "out" / "gpu_pretrain.log").read_text()


def test_gpu_pretrain_brings_back_log_metrics_and_manifest(tmp_path):
    res = _run_gpu_pretrain(tmp_path, 'mkdir -p "$RUNDIR/pretrain-0123456789ab"\n'
                            'echo "{\\"mfu\\": 0.4}" > "$RUNDIR/pretrain-0123456789ab/metrics.json"\n'
                            'echo "{}" > "$RUNDIR/pretrain-0123456789ab/manifest.json"\n'
                            'echo "wall 1.0 min, steps 10, loss 5.000, tokens/s 1000, MFU 40.0%"\n')
    assert res.returncode == 0, res.stderr
    assert "MFU 40.0%" in res.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu_pretrain.log", "manifest.json", "metrics.json"]
