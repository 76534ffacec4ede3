"""Pack what ``benchmarks/gpu_pretrain.sh`` needs on the lent GPU machine into ``.gpu/`` (ignored by git).

That machine (docs: the tool library's device README) has Python 3.12 with a CUDA torch,
transformers, tokenizers, pyarrow and pandas, but no Ray, DeepSpeed or pydantic, no network, and
takes at most 64 MiB of files per call, working tree included; the data beside the checkout does
not travel. So this script, run HERE, writes:

- ``.gpu/wheels/``: the missing pure or cp312 wheels (pydantic, jsonschema, hjson, DeepSpeed...);
- ``.gpu/ray-site.tar.xz``: Ray's wheel unpacked WITHOUT ``ray/jars`` (the Java worker, 32 MB) and
  the dashboard's web client, which a CPU/GPU Python job never loads: the full wheel (79 MB) alone
  is over the limit;
- ``.gpu/mono/<lang>.txt.xz``: the unlabelled text of the run's languages.

``gpu_pretrain.sh`` unpacks them (``--unpack``) when it finds ``.gpu/`` and no Ray. The run:
``run(command="bash benchmarks/gpu_pretrain.sh", carry=[".gpu"], timeout_s=600)``.

    python benchmarks/gpu_carry.py                      # for the device (Python 3.12)
    python benchmarks/gpu_carry.py --unpack /tmp/lrl-site --data-out /tmp/lrl-data   # there
    python benchmarks/gpu_carry.py --python 3.11 --out /tmp/gpu-carry-test   # to test the unpacking here
"""

from __future__ import annotations

import argparse
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Packages the pretraining path imports that the device image lacks (KINDS.md's package list),
#: with the versions installed here so both machines run the same code.
MISSING = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection", "jsonschema",
           "jsonschema-specifications", "referencing", "rpds-py", "hjson", "dill"]
#: Parts of Ray's wheel that a Python job on one machine never loads.
RAY_SKIP = ("ray/jars/", "ray/dashboard/client/build/")
LIMIT = 60 * 2**20  # the call's 64 MiB, less the working tree (~1.5 MB) and some margin


def pip_download(names: list[str], python: str, dest: Path) -> None:
    tag = python.replace(".", "")
    pins = [f"{n}=={metadata.version(n)}" for n in names]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--python-version", python, "--implementation", "cp", "--abi", f"cp{tag}",
                    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux2014_x86_64", "--platform", "any", "-q", "-d", str(dest), *pins],
                   check=True)


def deepspeed_wheel(dest: Path) -> None:
    """DeepSpeed ships an sdist only; its wheel is pure Python (ops compile on first use)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dest), f"deepspeed=={metadata.version('deepspeed')}"], check=True,
                   env={**os.environ, "DS_BUILD_OPS": "0"})


def ray_site(python: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pip_download(["ray"], python, Path(tmp))
        strip_wheel(next(Path(tmp).glob("ray-*.whl")), out)


def strip_wheel(wheel: Path, out: Path, skip: tuple[str, ...] = RAY_SKIP) -> None:
    """``wheel``'s files but those under ``skip``, as an installed tree in a ``.tar.xz``."""
    with zipfile.ZipFile(wheel) as z, tarfile.open(out, "w:xz", preset=6) as tar:
        for info in z.infolist():
            if info.is_dir() or info.filename.startswith(skip):
                continue
            data = z.read(info)
            ti = tarfile.TarInfo(info.filename)
            ti.size = len(data)
            # zip keeps the Unix mode in the high bits: the raylet and GCS binaries must stay executable
            ti.mode = (info.external_attr >> 16) & 0o777 or 0o644
            tar.addfile(ti, io.BytesIO(data))


def unpack(carry: Path, site: Path, data_out: Path) -> None:
    """On the device: install the wheels and Ray into ``site`` (for PYTHONPATH), the text into
    ``data_out/mono`` (for LRL_DATA_ROOT)."""
    site.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, sorted((carry / "wheels").glob("*.whl")))],
                   check=True)
    with tarfile.open(carry / "ray-site.tar.xz") as tar:
        tar.extractall(site, filter="tar")
    (data_out / "mono").mkdir(parents=True, exist_ok=True)
    for src in sorted((carry / "mono").glob("*.txt.xz")):
        with lzma.open(src) as f, open(data_out / "mono" / src.name[: -len(".xz")], "wb") as g:
            shutil.copyfileobj(f, g)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="3.12", help="the device's Python (3.12); 3.11 to test here")
    ap.add_argument("--out", type=Path, default=ROOT / ".gpu")
    ap.add_argument("--langs", nargs="+", default=["ug", "wo"])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("LRL_DATA_ROOT", ROOT.parent / "shared" / "data")))
    ap.add_argument("--unpack", type=Path, metavar="SITE", help="unpack --out into SITE instead (on the device)")
    ap.add_argument("--data-out", type=Path, default=Path("/tmp/lrl-data"), help="with --unpack: the data root")
    a = ap.parse_args(argv)
    if a.unpack:
        unpack(a.out, a.unpack, a.data_out)
        return 0

    shutil.rmtree(a.out, ignore_errors=True)
    (a.out / "wheels").mkdir(parents=True)
    (a.out / "mono").mkdir()
    pip_download(MISSING, a.python, a.out / "wheels")
    deepspeed_wheel(a.out / "wheels")
    ray_site(a.python, a.out / "ray-site.tar.xz")
    for lang in a.langs:
        src = a.data / "mono" / f"{lang}.txt"
        with open(src, "rb") as f, lzma.open(a.out / "mono" / f"{lang}.txt.xz", "wb", preset=6) as g:
            shutil.copyfileobj(f, g)
    sizes = {p.relative_to(a.out).as_posix(): p.stat().st_size for p in sorted(a.out.rglob("*")) if p.is_file()}
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"  {size / 2**20:7.2f} MiB  {name}")
    print(f"{a.out}: {total / 2**20:.1f} MiB (limit for one call, with the working tree: {LIMIT / 2**20:.0f} MiB)")
    if total > LIMIT:
        print("ERROR: too large for one device call", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
