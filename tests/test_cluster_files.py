"""Every file in cluster/ is parsed and checked: the launcher YAML against Ray's own validation,
the KubeRay manifests for their required fields, security defaults and consistency with the
package (image tag, Ray version, job files, GPU requests)."""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
#: The Ray manifests (RayCluster, RayJob); pvc.yaml is the volume they mount.
MANIFESTS = sorted(p for p in (CLUSTER / "kuberay").glob("*.yaml") if p.name != "pvc.yaml")


def _ray_version() -> str:
    import ray

    return ray.__version__


def _lrl_version() -> str:
    # (tomllib is 3.11+, and the project supports 3.10)
    return re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), flags=re.M).group(1)


def test_launcher_yaml_passes_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    validate_config(prepare_config(cfg))  # raises jsonschema.ValidationError / ValueError when wrong
    types = cfg["available_node_types"]
    assert types["gpu_worker"]["resources"].get("GPU", 0) >= 1, "GPU workers must offer GPUs for training"
    assert types["cpu_worker"]["max_workers"] > types["cpu_worker"].get("min_workers", 0), "CPU workers autoscale"
    assert types["gpu_worker"]["max_workers"] > types["gpu_worker"].get("min_workers", 0), "GPU workers autoscale"


def test_launcher_keeps_dashboard_local_and_auth_on():
    cfg = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    for cmd in cfg["head_start_ray_commands"][1:] + cfg["worker_start_ray_commands"][1:]:
        assert "RAY_AUTH_MODE=token" in cmd
    images = [cfg["docker"]["image"]] + [t.get("docker", {}).get("worker_image") for t in
                                         cfg["available_node_types"].values() if t.get("docker")]
    for image in images:
        assert image.split(":")[1].startswith(_ray_version()), f"{image} does not match ray {_ray_version()}"


def test_launcher_installs_the_packages_dependencies():
    # The nodes get lrl as a py_module, not pip-installed: its dependencies come from setup_commands.
    # A stale list (transformers>=4.45 after pyproject moved to >=5 for the v5 tokenizer API) let a
    # node install a transformers the package cannot run on.
    block = re.search(r"^dependencies = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), flags=re.S | re.M)
    wanted = {d for d in re.findall(r'"([^"]+)"', block.group(1)) if not d.startswith("ray")}
    cfg = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    installed = set()
    for _, requirements in _pip_installs(cfg["setup_commands"]):
        installed |= set(requirements)
    assert installed == wanted, (f"aws.yaml setup_commands differ from pyproject.toml: missing "
                                 f"{sorted(wanted - installed)}, extra {sorted(installed - wanted)}")


def _pip_installs(commands: list[str]) -> list[tuple[list[str], list[str]]]:
    """(constraint files, requirements) of each ``pip install`` among shell commands."""
    out = []
    for cmd in commands:
        argv = shlex.split(cmd)
        if argv[:2] != ["pip", "install"]:
            continue
        constraints, requirements, rest = [], [], iter(argv[2:])
        for arg in rest:
            if arg in ("-c", "--constraint"):
                constraints.append(next(rest))
            elif not arg.startswith("-"):
                requirements.append(arg)
        out.append((constraints, requirements))
    return out


def _test_pins() -> dict[str, str]:
    """name -> version of the exact pins the tests install with (.ci/run: ``pip install -c``)."""
    pins = {}
    for line in (REPO / ".ci" / "constraints-cpu.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f".ci/constraints-cpu.txt: {line!r} is not an exact pin (name==version)"
            pins[name.strip().lower()] = version.strip()
    return pins


def test_cluster_installs_the_versions_the_tests_pin():
    """aws.yaml's setup_commands and the Dockerfile installed the dependency ranges alone
    ("torch>=2.3"), so a cluster set up or an image built a month later ran versions the tests
    never ran. Both install with .ci/constraints-cpu.txt itself (no copy of its pins that could
    drift), and every pin must fit the range pyproject.toml and setup_commands ask for (a pin
    outside it makes the nodes' pip install fail)."""
    from packaging.requirements import Requirement

    pins = _test_pins()
    assert "torch" in pins, "the tests pin torch; the cluster must install that version"
    cfg = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    mounted = [remote for remote, local in cfg["file_mounts"].items() if local == ".ci/constraints-cpu.txt"]
    assert len(mounted) == 1, "aws.yaml file_mounts must copy .ci/constraints-cpu.txt to the nodes"
    installs = _pip_installs(cfg["setup_commands"])
    assert installs and all(constraints == mounted for constraints, _ in installs), installs
    for _, requirements in installs:
        for req in map(Requirement, requirements):
            if req.name.lower() in pins:
                assert req.specifier.contains(pins[req.name.lower()], prereleases=True), (
                    f"{req} does not admit the tested {req.name}=={pins[req.name.lower()]}")
    docker = (CLUSTER / "Dockerfile").read_text()
    copied = re.search(r"^COPY\s+(?:--\S+\s+)*\.ci/constraints-cpu\.txt\s+(\S+)$", docker, flags=re.M)
    assert copied, "the Dockerfile must copy .ci/constraints-cpu.txt into the image"
    for args in re.findall(r"pip install ([^&\n]*)", docker):  # (./ is the image's WORKDIR)
        used = re.search(r"(?:-c|--constraint) (\S+)", args)
        assert used and posixpath.normpath(used.group(1)) == posixpath.normpath(copied.group(1)), (
            f"the Dockerfile's `pip install {args}` must use the copied {copied.group(1)}")


def _containers(spec: dict) -> list[tuple[str, dict, dict]]:
    """(group, rayStartParams, container) for the head and each worker group of a RayCluster spec."""
    out = [("head", spec["headGroupSpec"]["rayStartParams"], c)
           for c in spec["headGroupSpec"]["template"]["spec"]["containers"]]
    for g in spec.get("workerGroupSpecs", []):
        out += [(g["groupName"], g["rayStartParams"], c) for c in g["template"]["spec"]["containers"]]
    return out


def _cluster_spec(doc: dict) -> dict:
    return doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kuberay_manifest_required_fields_and_security(path):
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] in ("RayCluster", "RayJob")
    assert doc["metadata"]["name"]
    spec = _cluster_spec(doc)
    assert spec["rayVersion"] == _ray_version()
    assert spec["authOptions"]["mode"] == "token", "token authentication must stay on"
    assert spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP", "dashboard must not be exposed"
    text = yaml.safe_dump(doc)  # the parsed manifest, not its comments
    assert "LoadBalancer" not in text and "NodePort" not in text
    for g in spec.get("workerGroupSpecs", []):
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], g["groupName"]
    expected_image = f"lrl:{_lrl_version()}-ray{_ray_version()}"
    for group, params, c in _containers(spec):
        assert c["image"] == expected_image, f"{path.name} {group}: image {c['image']} != {expected_image}"
        res = c["resources"]
        assert res["requests"] == res["limits"], f"{group}: requests and limits differ"
        if "num-cpus" in params and params["num-cpus"] != "0":
            assert params["num-cpus"] == str(res["limits"]["cpu"]), f"{group}: num-cpus != cpu limit"
        gpus = res["limits"].get("nvidia.com/gpu")
        assert str(params.get("num-gpus", "0")) == str(gpus or "0"), f"{group}: num-gpus != GPU limit"
        for env in c.get("env", []):
            # secrets only by reference: no literal value for anything that looks like a credential
            if re.search(r"TOKEN|KEY|SECRET|PASSWORD", env["name"]):
                assert "valueFrom" in env and "value" not in env, f"{group}: {env['name']} must use secretKeyRef"
    assert any("gpu" in g["groupName"] for g in spec["workerGroupSpecs"])


def test_rayjob_entrypoint_runs_lrl_run_on_an_existing_job_file():
    doc = yaml.safe_load((CLUSTER / "kuberay" / "rayjob.yaml").read_text())
    argv = shlex.split(doc["spec"]["entrypoint"])
    assert argv[:2] == ["lrl", "run"], argv
    assert (REPO / argv[2]).is_file(), f"entrypoint job file {argv[2]} does not exist"
    assert doc["spec"]["shutdownAfterJobFinishes"] is True
    from lrl.job import load_job

    load_job(REPO / argv[2], argv[3:])  # the overrides it passes validate too


def test_dockerfile_builds_the_tag_the_manifests_use():
    text = (CLUSTER / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{_ray_version()}-" in text
    assert f"lrl:{_lrl_version()}-ray{_ray_version()}" in text
    for copied in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", text, flags=re.M):
        for src in copied.split():
            assert (REPO / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_local_cluster_script_is_valid_bash_and_scoped():
    script = CLUSTER / "local_cluster.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "--dashboard-host 127.0.0.1" in text and "RAY_AUTH_MODE=token" in text
    # never the global `ray stop` (it would kill other users' Ray on a shared machine)
    assert not re.search(r"^\s*ray stop", text, flags=re.M)
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "start N" in usage.stderr


def test_local_cluster_first_suggests_a_job_that_ends_in_minutes(tmp_path):
    """`start` prints the `lrl submit` to try. It was only jobs/wikiann_ug.yaml, 20,000 pretraining
    steps and a 12-trial search: hours on a laptop's CPUs, for a user checking that submission works.
    The first suggestion is now a job of a few steps whose data travels with the upload."""
    from lrl.job import load_job

    text = (CLUSTER / "local_cluster.sh").read_text()
    shown = text.split("Ray cluster up", 1)[1]
    m = re.search(r'lrl submit (\S+\.yaml)', shown)
    assert m, "start prints no `lrl submit` command"
    job = REPO / m.group(1)
    assert job.is_file(), f"{m.group(1)}: not a file under the repository root"
    cfg = load_job(job, [f"output.root={tmp_path}"])
    assert "tune" not in cfg.pipeline.stages and cfg.pretrain.steps <= 200, (m.group(1), cfg.pretrain.steps)
    assert job.resolve().is_relative_to(REPO) and Path(cfg.data.root).resolve().is_relative_to(REPO)


def test_local_cluster_refuses_a_taken_port_before_starting_anything(tmp_path):
    """A taken port made Ray's node abort while `ray start` waited 30 s and then said only "timed
    out during startup" (CI, 2026-12-01); the script now names the port and starts nothing."""
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        base = busy - 111  # node 1's object manager port (see node_ports)
        env = {**os.environ, "LRL_CLUSTER_DIR": str(tmp_path), "LRL_CLUSTER_PORT": str(base),
               "LRL_CLUSTER_DASHBOARD_PORT": str(base + 2), "PYTHON": sys.executable}
        res = subprocess.run(["bash", str(CLUSTER / "local_cluster.sh"), "start", "1"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert f"{busy} (node 1 object manager)" in res.stderr and "pick another LRL_CLUSTER_PORT" in res.stderr
    assert not (tmp_path / "pids").exists() and not (tmp_path / "head.log").exists()


def _gpu_cluster_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `lrl`) of every `lrl run|submit` the GPU clusters' files and the README's
    cluster section show, the RayJob's entrypoint included."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    sources = [("README.md", section)] + [(p.name, p.read_text(encoding="utf-8"))
                                           for p in [CLUSTER / "aws.yaml", *MANIFESTS]]
    found = []
    for name, text in sources:
        for m in re.finditer(r"lrl (run|submit) (jobs/\S+\.yaml)([^`\n]*)", text):
            argv = [a for a in shlex.split(m.group(3)) if not a.startswith("-") and "=" in a]
            found.append((name, [m.group(1), m.group(2), *argv]))
    return found


def test_gpu_cluster_commands_put_every_training_stage_on_the_gpu_workers():
    """The RayJob started a GPU worker group that nothing asked for: tune (and finetune) reserve
    GPUs only with tune.gpus_per_trial / finetune.num_gpus, and pretrain's auto choice cannot see
    a GPU group scaled to zero (Ray 2.60's autoscalers do not report their node groups)."""
    from lrl.job import load_job

    commands = _gpu_cluster_commands()
    assert {w for w, _ in commands} >= {"README.md", "aws.yaml", "raycluster.yaml", "rayjob.yaml"}, commands
    for where, (_, job, *overrides) in commands:
        cfg = load_job(REPO / job, overrides)
        stages = cfg.pipeline.stages
        if "pretrain" in stages:
            assert cfg.pretrain.use_gpu is True, f"{where}: lrl {job} {overrides} trains pretrain on CPU"
        if "tune" in stages:
            assert cfg.tune.gpus_per_trial > 0, f"{where}: lrl {job} {overrides} tunes on CPU"
        if "finetune" in stages:
            assert cfg.finetune.num_gpus > 0, f"{where}: lrl {job} {overrides} fine-tunes on CPU"


def _readme_cluster_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]


def _pods(spec: dict) -> list[tuple[str, dict]]:
    """(group, pod spec) of the head and each worker group of a RayCluster spec."""
    return [("head", spec["headGroupSpec"]["template"]["spec"])] + [
        (g["groupName"], g["template"]["spec"]) for g in spec.get("workerGroupSpecs", [])]


def test_kuberay_data_volume_is_the_shared_readwritemany_claim_the_readme_names():
    """The manifests mounted a PVC `lrl-data` at /data that nothing created, and the README did not
    say it must be ReadWriteMany (every pod reads data.root and writes output.root at once; a
    ReadWriteOnce claim attaches to one node and the other pods never start)."""
    from lrl.job import load_job

    pvc = yaml.safe_load((CLUSTER / "kuberay" / "pvc.yaml").read_text())
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    claim = pvc["metadata"]["name"]
    for path in MANIFESTS:
        spec = _cluster_spec(yaml.safe_load(path.read_text()))
        for group, pod in _pods(spec):
            volumes = {v["name"] for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == claim}
            for c in pod["containers"]:
                mounts = [m for m in c.get("volumeMounts", []) if m["name"] in volumes and m["mountPath"] == "/data"]
                assert mounts, f"{path.name} {group}: {c['name']} does not mount claim {claim} at /data"
    job = yaml.safe_load((CLUSTER / "kuberay" / "rayjob.yaml").read_text())
    cfg = load_job(REPO / shlex.split(job["spec"]["entrypoint"])[2], shlex.split(job["spec"]["entrypoint"])[3:])
    for root in (cfg.data.root, cfg.output.root):
        assert root == "/data" or root.startswith("/data/"), f"rayjob.yaml: {root} is not on the /data volume"
    section = _readme_cluster_section()
    for needed in (claim, "ReadWriteMany", "kubectl apply -f cluster/kuberay/pvc.yaml", "/data"):
        assert needed in section, f"README.md's cluster section does not say {needed!r}"


def test_readme_says_how_the_image_gets_to_the_cluster():
    """The manifests run `lrl:<version>-ray<version>`, a tag no registry has: the README named no
    build, load or push, nor the pull policy. The commands it shows must produce what the manifests
    ask for: the tag the Dockerfile builds, and its `sed` must repoint every container's image."""
    tag = f"lrl:{_lrl_version()}-ray{_ray_version()}"
    section = _readme_cluster_section()
    assert f"docker build -f cluster/Dockerfile -t {tag} ." in section
    assert f"docker push REGISTRY/{tag}" in section and "imagePullPolicy: IfNotPresent" in section
    sed = re.search(r"sed 's#(image: lrl:)#(image: REGISTRY/lrl:)#' (\S+)", section)
    assert sed and (REPO / sed.group(3)).is_file(), "README.md: no sed that repoints the manifests' image"
    for path in MANIFESTS:
        spec = _cluster_spec(yaml.safe_load(path.read_text().replace(sed.group(1), sed.group(2))))
        for group, _, c in _containers(spec):
            assert c["image"] == f"REGISTRY/{tag}", f"{path.name} {group}: the README's sed leaves {c['image']}"
            assert c.get("imagePullPolicy") == "IfNotPresent", f"{path.name} {group}: pull policy not as documented"


def test_launcher_workers_get_the_credentials_an_s3_output_root_needs():
    """The commands shown for aws.yaml write output.root=s3://...; Ray gives its default instance
    profile (ray-autoscaler-v1, the only source of credentials the file promises) to the head only,
    so the CPU workers that write the generate stage's parts (and the GPU workers that write
    checkpoints) had none. Every worker type must name an instance profile."""
    from ray.autoscaler._private.aws.config import DEFAULT_RAY_INSTANCE_PROFILE

    cfg = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    uses_s3 = [argv for where, (_, _, *argv) in _gpu_cluster_commands() if where == "aws.yaml"
               if any(a.startswith(("output.root=s3://", "data.root=s3://")) for a in argv)]
    assert uses_s3, "aws.yaml no longer shows an s3:// command: revisit this test"
    for name, node_type in cfg["available_node_types"].items():
        if name == cfg["head_node_type"]:
            continue
        profile = node_type["node_config"].get("IamInstanceProfile", {})
        assert profile.get("Name") == DEFAULT_RAY_INSTANCE_PROFILE or profile.get("Arn"), (
            f"aws.yaml {name}: no IamInstanceProfile, so its nodes cannot read or write s3://")


def test_every_ray_container_gets_the_same_secrets():
    """The RayJob gave HF_TOKEN to its head only: stage work runs on the workers (a gated hub
    model loaded in a Ray Data task there had no token), while the RayCluster gave it to all."""
    for path in MANIFESTS:
        refs = {}
        for group, _, c in _containers(_cluster_spec(yaml.safe_load(path.read_text()))):
            refs[group] = sorted((e["name"], e["valueFrom"]["secretKeyRef"]["name"]) for e in c.get("env", [])
                                 if "secretKeyRef" in e.get("valueFrom", {}))
        assert refs["head"] and all(r == refs["head"] for r in refs.values()), f"{path.name}: {refs}"


@pytest.mark.parametrize("port, dash, nodes, message", [
    (7000, 8265, 4, "ports given two roles: 8265 (dashboard and node 1 workers)"),
    (65000, 8265, 1, "LRL_CLUSTER_PORT=65000 gives ports 8265-66399, outside 1-65535"),
    (6380, 6380, 1, "ports given two roles: 6380 (GCS and dashboard)"),
    (6380, -1, 1, "LRL_CLUSTER_DASHBOARD_PORT=-1 is no port"),
    (6380, 8265, "abc", "must be whole numbers"),
])
def test_local_cluster_refuses_ports_it_cannot_use(tmp_path, port, dash, nodes, message):
    """Ports past 65535 crashed the check with a Python traceback (OverflowError), and a dashboard
    port inside a node's worker range was silently dropped from it."""
    env = {**os.environ, "LRL_CLUSTER_DIR": str(tmp_path), "LRL_CLUSTER_PORT": str(port),
           "LRL_CLUSTER_DASHBOARD_PORT": str(dash), "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(CLUSTER / "local_cluster.sh"), "start", str(nodes)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "head.log").exists()
