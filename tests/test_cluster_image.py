"""The image cluster/Dockerfile builds and what the KubeRay manifests run in it, checked offline
(no Docker and no Kubernetes in CI): the build context lets in every COPY source and keeps run
outputs out, the RayJob's entrypoint resolves inside the image's WORKDIR, the worker groups can
place every task of the jobs the cluster files run, and the KubeRay version they need is named.

The Dockerfile's steps and the RayJob's entrypoint were replayed by hand once (session 25: a
fresh Python 3.11 venv as the image's `ray` user, a root-owned WORKDIR, the entrypoint submitted
through the Ray Jobs API to a head started in that WORKDIR); these tests keep what that showed."""

from __future__ import annotations

import posixpath
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
MANIFESTS = sorted(p for p in (CLUSTER / "kuberay").glob("*.yaml") if p.name != "pvc.yaml")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of cluster/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (CLUSTER / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _workdir() -> str:
    dirs = [args for word, args in _instructions() if word == "WORKDIR"]
    assert dirs, "cluster/Dockerfile sets no WORKDIR"
    return dirs[-1]


def _copies() -> list[tuple[str, str]]:
    """(source in the build context, absolute path in the image) of every COPY, in order."""
    workdir, out = _workdir(), []
    for word, args in _instructions():
        if word != "COPY":
            continue
        *srcs, dest = [a for a in shlex.split(args) if not a.startswith("--")]
        target = posixpath.normpath(posixpath.join(workdir, dest))
        into_dir = len(srcs) > 1 or dest.endswith("/")
        out += [(s, posixpath.join(target, posixpath.basename(s)) if into_dir else target) for s in srcs]
    return out


def _source_of(image_path: str) -> Path | None:
    """The repository file a path of the image comes from (the last COPY that writes it)."""
    for src, target in reversed(_copies()):
        if image_path == target or image_path.startswith(target + "/"):
            return REPO / src / image_path[len(target):].lstrip("/")
    return None


def _ignore_rules() -> list[tuple[bool, re.Pattern]]:
    """(is an exception `!`, regex) of cluster/Dockerfile.dockerignore, in Docker's syntax: `*` and
    `?` stay within one path segment, `**` spans any number of them."""
    rules = []
    for line in (CLUSTER / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((keep, re.compile(regex + r"\Z")))
    return rules


def _in_context(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether Docker sends ``path`` to the builder: the last rule matching it or one of its
    parent folders decides (moby's patternmatcher, MatchesOrParentMatches)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for keep, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not keep
    return not excluded


def _files_under(src: str) -> list[str]:
    root = REPO / src
    if root.is_file():
        return [src]
    return [p.relative_to(REPO).as_posix() for p in root.rglob("*") if p.is_file()
            and "__pycache__" not in p.parts and not any(part.endswith(".egg-info") for part in p.parts)]


def test_build_context_lets_in_every_copy_source_and_keeps_run_outputs_out():
    """`docker build -f cluster/Dockerfile .` sent the whole repository to the builder: runs/ (the
    default output.root, pretraining checkpoints included), .git and caches the image never uses.
    The Dockerfile's own ignore file lets in only what COPY needs, and all of that."""
    rules = _ignore_rules()
    sources = [src for src, _ in _copies()]
    assert sources, "cluster/Dockerfile copies nothing"
    for src in sources:
        files = _files_under(src)
        assert files, f"COPY {src}: nothing there"
        missing = [f for f in files if not _in_context(f, rules)]
        assert not missing, f"cluster/Dockerfile.dockerignore keeps COPY {src} out of the context: {missing[:5]}"
    for outside in ["runs/pretrain-0123/checkpoint/model.safetensors", ".git/HEAD", "tests/test_jobs.py",
                    "benchmarks/out/x.json", "platform/lrl/__pycache__/cli.cpython-311.pyc",
                    "platform/lrl.egg-info/PKG-INFO", ".venv/bin/python"]:
        assert not _in_context(outside, rules), f"{outside} would be sent to the image builder"


def test_workdir_belongs_to_the_user_the_image_runs_as():
    """Docker's WORKDIR makes a missing folder as root whatever the USER, and rayproject/ray runs
    as `ray` (uid 1000): in the replay, `lrl quickstart` (its output runs/quickstart is relative)
    stopped at once with PermissionError in the root-owned WORKDIR, as would `lrl run` without an
    output.root. A RUN as root must make the folder, owned by ray, and the image run as ray after."""
    ins, workdir = _instructions(), re.escape(_workdir())
    at = max(i for i, (word, _) in enumerate(ins) if word == "WORKDIR")
    owned = rf"\b(install\b[^&]*-o ray|chown\b[^&]*\bray)\b[^&]*\s{workdir}(\s|$)"
    made = [i for i, (word, args) in enumerate(ins[:at]) if word == "RUN" and re.search(owned, args)]
    assert made, f"no RUN before WORKDIR makes {_workdir()} owned by ray"
    users_then = [args for word, args in ins[:made[-1]] if word == "USER"]
    assert users_then and users_then[-1] in ("root", "0"), "the RUN that makes the folder must run as root"
    users = [args for word, args in ins if word == "USER"]
    assert users[-1] in ("ray", "1000"), f"the image would run as {users[-1]}, not as ray"


def _entrypoint() -> list[str]:
    doc = yaml.safe_load((CLUSTER / "kuberay" / "rayjob.yaml").read_text())
    return shlex.split(doc["spec"]["entrypoint"])


def _pyproject() -> str:
    return (REPO / "pyproject.toml").read_text()


def test_rayjob_entrypoint_resolves_inside_the_image():
    """Ray runs a RayJob's entrypoint (no runtimeEnvYAML, so no working_dir) in the head raylet's
    folder, the image's WORKDIR (the replay's job printed it as its `pwd`): the relative job file
    must be one the Dockerfile copies there, and `lrl` a console script of the installed package."""
    argv = _entrypoint()
    scripts = re.search(r"^\[project\.scripts\]\n(.*?)(?:^\[|\Z)", _pyproject(), flags=re.S | re.M).group(1)
    assert re.search(rf'^{re.escape(argv[0])} = "', scripts, flags=re.M), f"{argv[0]}: no console script"
    job = argv[2]
    assert not posixpath.isabs(job), job
    source = _source_of(posixpath.join(_workdir(), job))
    assert source is not None, f"the RayJob runs {job}, which no COPY puts under WORKDIR {_workdir()}"
    assert source.is_file(), f"{job} would come from {source}, which does not exist"
    assert _in_context(source.relative_to(REPO).as_posix(), _ignore_rules())


def test_image_gets_what_its_editable_install_reads():
    """`pip install -e .` runs in WORKDIR: it reads pyproject.toml, the readme it names and the
    package folder (tool.setuptools.packages.find where); each must be copied there."""
    text = _pyproject()
    readme = re.search(r'^readme = "([^"]+)"', text, flags=re.M).group(1)
    where = re.search(r"^where = \[\"([^\"]+)\"\]", text, flags=re.M).group(1)
    for needed in ("pyproject.toml", readme, f"{where}/lrl/__init__.py"):
        source = _source_of(posixpath.join(_workdir(), needed))
        assert source is not None and source.is_file(), f"the image's `pip install -e .` needs {needed}"
    run = " ".join(args for word, args in _instructions() if word == "RUN")
    assert "pip install" in run and "-e ." in run


def test_image_ray_version_is_the_pinned_one():
    """The base image's Ray, the version pip is held to (.ci/constraints-cpu.txt, which the image
    installs with) and the manifests' rayVersion must agree: another pin made pip replace the
    image's Ray, and KubeRay picks its commands by rayVersion."""
    base = next(args for word, args in _instructions() if word == "FROM")
    image_ray = re.match(r"rayproject/ray:(\d+\.\d+\.\d+)-", base).group(1)
    pinned = re.search(r"^ray==(\S+)$", (REPO / ".ci" / "constraints-cpu.txt").read_text(), flags=re.M).group(1)
    assert image_ray == pinned, f"FROM {base} but .ci/constraints-cpu.txt pins ray=={pinned}"
    for path in MANIFESTS:
        doc = yaml.safe_load(path.read_text())
        spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
        assert spec["rayVersion"] == pinned, f"{path.name}: rayVersion {spec['rayVersion']} != ray=={pinned}"


def _groups(spec: dict) -> list[tuple[str, float, float, int]]:
    """(group, Ray CPUs, Ray GPUs, maxReplicas) of each worker group: rayStartParams, else the
    Ray container's limits (what KubeRay passes to `ray start` when the params are unset)."""
    out = []
    for g in spec["workerGroupSpecs"]:
        limits = g["template"]["spec"]["containers"][0]["resources"]["limits"]
        params = g.get("rayStartParams", {})
        cpus = float(params.get("num-cpus", limits["cpu"]))
        gpus = float(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
        out.append((g["groupName"], cpus, gpus, int(g["maxReplicas"])))
    return out


def _commands(path: Path) -> list[list[str]]:
    """`lrl run|submit` commands (after `lrl`) a manifest runs or shows in its comments, and those
    of README.md's cluster section (they name the shipped clusters' sizes)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    found = []
    for text in (path.read_text(), section):
        for m in re.finditer(r"lrl (run|submit) (jobs/\S+\.yaml)([^`\n]*)", text):
            found.append([m.group(1), m.group(2)] + [a for a in shlex.split(m.group(3))
                                                     if not a.startswith("-") and "=" in a])
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_worker_groups_can_place_every_task_of_their_jobs(path):
    """A task's bundle must fit on one node of a group, at the group's maxReplicas, or Ray waits
    for ever: pretrain's workers (cpus_per_worker, a GPU with use_gpu), a Tune trial, a fine-tuning
    task. ray.plan_cpus must be what the CPU groups can grow to (the comments' 8 x 16)."""
    from lrl.capacity import workers_that_fit
    from lrl.job import load_job

    doc = yaml.safe_load(path.read_text())
    spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
    groups = _groups(spec)
    nodes = [{"CPU": cpus, "GPU": gpus} for _, cpus, gpus, n in groups for _ in range(n)]
    cpu_max = sum(cpus * n for _, cpus, gpus, n in groups if not gpus)
    commands = _commands(path)
    assert commands, f"{path.name}: no lrl command found"
    for _, job, *overrides in commands:
        cfg, where = load_job(REPO / job, overrides), f"{path.name}: lrl {job} {' '.join(overrides)}"
        stages = cfg.pipeline.stages
        p = cfg.pretrain
        if "pretrain" in stages:
            fit = workers_that_fit(nodes, p.cpus_per_worker, 1.0 if p.use_gpu else 0.0)
            assert fit >= p.num_workers, f"{where}: {p.num_workers} pretrain workers, room for {fit}"
        if "tune" in stages:
            assert workers_that_fit(nodes, cfg.tune.cpus_per_trial, cfg.tune.gpus_per_trial) >= 1, where
        if "finetune" in stages:
            assert workers_that_fit(nodes, cfg.finetune.num_cpus, cfg.finetune.num_gpus) >= 1, where
        if cfg.ray.plan_cpus is not None:
            assert cfg.ray.plan_cpus == cpu_max, f"{where}: ray.plan_cpus={cfg.ray.plan_cpus}, CPU groups grow to {cpu_max:g}"


def test_kuberay_version_the_manifests_need_is_named():
    """authOptions came with KubeRay 1.5.1: an older operator's CRD has no such field, so
    `kubectl apply` stops on it, or with field validation off drops it and the cluster runs
    without token authentication. Every manifest using it, and the README, must say so."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    using = []
    for path in MANIFESTS:
        doc = yaml.safe_load(path.read_text())
        spec = doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]
        if "authOptions" in spec:
            using.append(path.name)
            header = "".join(line for line in path.read_text().splitlines(True) if line.startswith("#"))
            assert "KubeRay >= 1.5.1" in header, f"{path.name} uses authOptions but does not name KubeRay >= 1.5.1"
    assert using, "no manifest uses authOptions: revisit this test"
    assert "KubeRay >= 1.5.1" in section, "README.md's cluster section does not name the KubeRay version"
