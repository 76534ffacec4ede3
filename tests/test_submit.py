"""``lrl submit``: entrypoint, runtime_env and token handling (fast, with a fake Jobs client), and
one slow test that submits a real pipeline to a real two-node Ray cluster started with ``ray start``
on loopback, with token authentication on."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from submit_fakes import FakeClient, _args

import lrl
from lrl.config import ConfigError
from lrl.job import load_job
from lrl.pipeline import submit

REPO = Path(__file__).resolve().parent.parent


def test_entrypoint_is_lrl_run_relative_to_working_dir(tmp_path):
    job = tmp_path / "jobs" / "x.yaml"
    job.parent.mkdir()
    job.write_text("name: x\n")
    ep = submit.entrypoint(str(job), str(tmp_path), ["data.root=/d", "name=a b"], "finetune", None)
    assert shlex.split(ep) == ["python", "-m", "lrl.cli", "run", "jobs/x.yaml", "data.root=/d", "name=a b",
                               "--from", "finetune"]
    with pytest.raises(ConfigError, match="inside the uploaded working directory"):
        submit.entrypoint(str(job), str(tmp_path / "jobs" / "elsewhere"), [], None, None)


def test_runtime_env_ships_the_package_and_pip_or_image(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = load_job(None, [f"pipeline.submit.working_dir={tmp_path}", "pipeline.submit.pip=[seqeval]"])
    env = submit.runtime_env(cfg)
    assert env["py_modules"] == [str(Path(lrl.__file__).resolve().parent)]
    assert env["working_dir"] == str(tmp_path) and env["pip"] == ["seqeval"] and "image_uri" not in env
    assert env["env_vars"]["HF_TOKEN"] == "hf_secret" and "WANDB_API_KEY" not in env["env_vars"]
    img = submit.runtime_env(load_job(None, ["pipeline.submit.image_uri=lrl:0.1.0"]))
    assert img["image_uri"] == "lrl:0.1.0" and "pip" not in img


def test_auth_token_sources_in_rays_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    assert submit.auth_headers() == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert submit.auth_headers() == {"Authorization": "Bearer home-token"}
    (tmp_path / "t").write_text("path-token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    assert submit.auth_token() == "path-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "env-token")
    assert submit.auth_token() == "env-token"


def test_address_precedence(monkeypatch):
    cfg = load_job(None, ["pipeline.submit.address=http://127.0.0.1:9999"])
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # a GCS address is not a job server URL
    assert submit.job_address(None, cfg) == "http://127.0.0.1:9999"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://127.0.0.1:8000")
    assert submit.job_address(None, cfg) == "http://127.0.0.1:8000"
    assert submit.job_address("http://h:1", cfg) == "http://h:1"


def test_printed_ray_job_commands_carry_the_auth_mode_they_need(tmp_path, monkeypatch):
    """Ray's CLI sends the token only under RAY_AUTH_MODE=token; lrl sends it itself. After the
    KubeRay steps (RAY_AUTH_TOKEN exported) or ``ray up`` (~/.ray/auth_token), ``lrl submit`` worked
    and every ``ray job status|logs|stop`` line it printed failed with "Authentication required"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok")
    lines = submit.follow_up("http://h:1", "raysubmit_x").splitlines()
    assert [shlex.split(line)[:4] for line in lines] == [
        ["RAY_AUTH_MODE=token", "ray", "job", verb] for verb in ("status", "logs", "stop")]
    assert all(line.endswith(("--address http://h:1", "--address http://h:1 --follow")) for line in lines)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already set in this shell: no prefix needed
    assert submit.ray_job("stop", "raysubmit_x", "http://h:1") == "ray job stop raysubmit_x --address http://h:1"
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.delenv("RAY_AUTH_TOKEN")  # no token: a cluster without authentication
    assert submit.ray_job("logs", "raysubmit_x") == "ray job logs raysubmit_x"


def test_submit_flow_with_fake_client(tmp_path, monkeypatch, capsys):
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok")
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\noutput:\n  root: /shared/runs\npipeline:\n  submit:\n    working_dir: {tmp_path}\n")
    assert submit.run(_args(job, "seed=3", address="http://127.0.0.1:1")) == 0
    out = capsys.readouterr().out
    c = FakeClient.last
    assert c.headers == {"Authorization": "Bearer tok"}
    assert shlex.split(c.submitted["entrypoint"])[-2:] == ["job.yaml", "seed=3"]
    assert "all done" in out and "SUCCEEDED" in out
    for verb in ("status", "logs", "stop"):
        assert f"ray job {verb} raysubmit_fake --address http://127.0.0.1:1" in out
    assert submit.run(_args(job, address="http://127.0.0.1:1", dry_run=True, pip=["seqeval>=1.2"])) == 0
    out = capsys.readouterr().out
    assert "entrypoint: python -m lrl.cli run job.yaml\n" in out and "'pip': ['seqeval>=1.2']" in out
    with pytest.raises(ConfigError, match="not both"):
        submit.run(_args(job, dry_run=True, pip=["x"], image_uri="rayproject/ray:2.60.0"))



class FailedClient(FakeClient):
    """The cluster's ``lrl run`` exits with ``code`` (None: the cluster records none)."""

    code: int | None = 2

    def get_job_status(self, job_id):
        from ray.job_submission import JobStatus

        return JobStatus.FAILED

    def get_job_info(self, job_id):
        return argparse.Namespace(driver_exit_code=FailedClient.code)


def test_submit_returns_the_exit_status_of_the_clusters_lrl_run(tmp_path, monkeypatch, capsys):
    """A job that failed on a config or input error (``lrl run`` exits 2, as on a laptop) came back
    as 1: a script could not tell a bad input from a crash, though the README promises the job's
    exit status."""
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FailedClient)
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\noutput:\n  root: /shared/runs\npipeline:\n  submit:\n    working_dir: {tmp_path}\n")
    assert submit.run(_args(job, address="http://127.0.0.1:1")) == 2
    assert "FAILED" in capsys.readouterr().out
    monkeypatch.setattr(FailedClient, "code", None)  # e.g. the runtime_env failed: still non-zero
    assert submit.run(_args(job, address="http://127.0.0.1:1")) == 1


def test_submit_checks_from_and_only_before_uploading(tmp_path, monkeypatch, capsys):
    """A stage name that ``lrl run`` refuses (unknown, not in pipeline.stages, --from with --only)
    was uploaded and submitted anyway, and the job failed on the cluster with an argparse error."""
    import ray.job_submission

    from lrl import cli

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    FakeClient.last = None
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\noutput:\n  root: /shared/runs\npipeline:\n  stages: [generate, tokenizer]\n  submit:\n    working_dir: {tmp_path}\n")
    with pytest.raises(SystemExit) as exc:
        cli.main(["submit", str(job), "--from", "bogus", "--address", "http://127.0.0.1:1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["submit", str(job), "--from", "generate", "--only", "tokenizer", "--address", "http://127.0.0.1:1"])
    assert cli.main(["submit", str(job), "--only", "tune", "--address", "http://127.0.0.1:1"]) == 2
    assert "not in pipeline.stages" in capsys.readouterr().err
    assert FakeClient.last is None, "an invalid stage selection reached the cluster"
    # the dry run says where the cluster run writes its outputs and its state file
    assert cli.main(["submit", str(job), "output.root=/shared/runs", "--from", "tokenizer", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "/shared/runs/pipeline-" in out and "--from tokenizer" in out



def test_submit_warns_about_a_relative_data_root_outside_the_working_dir(tmp_path, monkeypatch, capsys):
    """``data.root=../shared/data`` (the recipes' ``lrl run`` line) passed the local check, and on the
    cluster resolved against the job's copy of the working directory, where the data is not."""
    wd = tmp_path / "wd"
    (wd / "data").mkdir(parents=True)
    job = wd / "job.yaml"
    job.write_text(f"name: fake\npipeline:\n  submit:\n    working_dir: {wd}\n")
    monkeypatch.chdir(wd)
    assert submit.run(_args(job, "data.root=../shared/data", "output.root=/shared/runs", dry_run=True)) == 0
    err = capsys.readouterr().err
    assert "data.root='../shared/data' is relative" in err
    # inside the uploaded folder it travels with the job: no warning
    assert submit.run(_args(job, "data.root=data", "output.root=/shared/runs", dry_run=True)) == 0
    assert "data.root" not in capsys.readouterr().err


def test_submit_refuses_a_relative_state_file(tmp_path, monkeypatch, capsys):
    """A relative ``pipeline.state`` was written into the job's temporary copy of the working
    directory on the cluster and lost with it: the next ``lrl submit --from`` found no finished stage.
    (A warning at first; now refused: tests/test_submit_outcome.py.)"""
    job = tmp_path / "job.yaml"
    job.write_text(f"name: fake\npipeline:\n  submit:\n    working_dir: {tmp_path}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="pipeline.state='state.json' is relative"):
        submit.run(_args(job, "output.root=/shared/runs", "pipeline.state=state.json", dry_run=True))
    assert submit.run(_args(job, "output.root=/shared/runs", "pipeline.state=/shared/state.json", dry_run=True)) == 0
    assert "relative" not in capsys.readouterr().err


def _free_base_port() -> int:
    """A GCS port whose derived ranges (port..port+1399, see local_cluster.sh) look free.

    Below the kernel's ephemeral range (32768+ here), so that no outgoing connection of the Ray
    processes already running can take a node's port while it starts: a node whose port was taken
    fails after 30 s with only "timed out during startup" (CI, 2026-12-01). The script checks
    every port itself; these probes only skip ranges that are plainly in use.
    """
    for _ in range(50):
        base = 20000 + (os.getpid() * 7 + int(time.time() * 1000)) % 10000
        probe = [base, base + 1, base + 2, base + 100, base + 110, base + 1000, base + 1399]
        try:
            for p in probe:
                with socket.socket() as s:
                    s.bind(("0.0.0.0", p))
            return base
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("no free port range found")


def _write_sample(data_root: Path, dest: Path, n: int = 60, split: str = "train") -> None:
    """The first ``n`` sentences of a wikiann/ug split (a CoNLL slice in the uploaded folder)."""
    text = (data_root / "wikiann" / "ug" / split).read_text(encoding="utf-8")
    dest.write_text("\n\n".join(text.strip().split("\n\n")[:n]) + "\n", encoding="utf-8")


def _tail(path: Path, chars: int = 3000) -> str:
    text = path.read_text(errors="replace")
    return f"--- {path} ({len(text)} chars), tail:\n{text[-chars:]}"


def _cluster_diagnostics(cdir: str, env: dict[str, str], exc: subprocess.TimeoutExpired) -> str:
    """What a hung submission left behind: the client's output, ``ray status``, the job drivers' logs
    and the tail of each node's raylet and runtime-env agent logs."""
    out = [f"client stdout: {exc.stdout!r}"[-3000:], f"client stderr: {exc.stderr!r}"[-3000:]]
    try:
        st = subprocess.run(["ray", "status", "--address", f"127.0.0.1:{env['LRL_CLUSTER_PORT']}", "-v"],
                            env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=60)
        out.append(f"ray status:\n{st.stdout[-4000:]}{st.stderr[-1000:]}")
    except (OSError, subprocess.TimeoutExpired) as err:
        out.append(f"ray status failed: {err!r}")
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True)
    out.append("busiest processes:\n" + "\n".join(ps.stdout.splitlines()[:15]))
    for pattern in ("*/session_latest/logs/job-driver-*.log", "*/session_latest/logs/raylet.out",
                    "*/session_latest/logs/runtime_env_agent.log", "*/session_latest/logs/runtime_env_setup-*.log",
                    "*/session_latest/logs/dashboard_agent.log"):
        out.extend(_tail(p) for p in sorted(Path(cdir).glob(pattern)))
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.cluster
def test_submit_a_pipeline_to_a_real_two_node_cluster(tmp_path, data_root):
    import ray

    if ray.is_initialized():
        ray.shutdown()
    cdir = tempfile.mkdtemp(prefix="lrlc", dir="/tmp")  # short: Ray socket paths must stay < 108 bytes
    token = Path(cdir) / "token"
    token.write_text(os.urandom(24).hex())
    port = _free_base_port()
    dash = port + 2
    env = {**os.environ, "LRL_CLUSTER_DIR": cdir, "LRL_CLUSTER_PORT": str(port),
           "LRL_CLUSTER_DASHBOARD_PORT": str(dash), "LRL_CLUSTER_CPUS": "1",
           "LRL_CLUSTER_OBJECT_STORE_MB": "200", "RAY_AUTH_TOKEN_PATH": str(token), "PYTHON": sys.executable}
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)  # as after the KubeRay steps: the token only (the script sets the mode)
    script = str(REPO / "cluster" / "local_cluster.sh")
    work, runs = tmp_path / "work", tmp_path / "runs"
    work.mkdir()
    _write_sample(data_root, work / "ug.conll")
    _write_sample(data_root, work / "ug_dev.conll", 30, "dev")
    # generate + a tiny fine-tune (a 2-layer encoder built from scratch, a few steps)
    (work / "job.yaml").write_text(
        "name: submit-test\ndata:\n  ner:\n    - {path: ug.conll, lang: ug}\n"
        "    - {path: ug_dev.conll, lang: ug, split: dev}\n"
        "augment:\n  ops: [swap]\nfinetune:\n  model: 'preset:tiny'\n  max_steps: 4\n  batch_size: 8\n"
        "pipeline:\n  stages: [generate, finetune]\n")
    try:
        for _ in range(3):  # the script refuses a range with a taken port before starting anything
            up = subprocess.run([script, "start", "1"], env=env, capture_output=True, text=True, timeout=180)
            if up.returncode == 0 or "pick another LRL_CLUSTER_PORT" not in up.stderr:
                break
            port = _free_base_port()
            dash = port + 2
            env.update(LRL_CLUSTER_PORT=str(port), LRL_CLUSTER_DASHBOARD_PORT=str(dash))
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{dash}"
        with pytest.raises(urllib.error.HTTPError) as denied:  # token auth is really on
            urllib.request.urlopen(f"{url}/api/jobs/", timeout=10)
        assert denied.value.code == 401
        t0 = time.time()
        try:
            res = subprocess.run(
                [sys.executable, "-m", "lrl.cli", "submit", str(work / "job.yaml"),
                 f"output.root={runs}", f"pipeline.submit.working_dir={work}", "ray.num_cpus=1", "--address", url],
                env=env, capture_output=True, text=True, timeout=300, cwd=work)
        except subprocess.TimeoutExpired as exc:  # say where it hung: CI keeps only this output
            pytest.fail(f"the submitted job did not finish in 300 s\n{_cluster_diagnostics(cdir, env, exc)}")
        log = res.stdout + res.stderr
        assert res.returncode == 0, log[-4000:]
        assert "SUCCEEDED" in log and "ray job logs raysubmit_" in log
        # the follow-up lines it printed work as printed (Ray's CLI needs RAY_AUTH_MODE=token)
        status_line = next(line.strip() for line in res.stdout.splitlines() if "ray job status raysubmit_" in line)
        st = subprocess.run(["bash", "-c", status_line], env=env, capture_output=True, text=True, timeout=60)
        assert st.returncode == 0 and "succeeded" in st.stdout + st.stderr, (status_line, st.stderr[-2000:])
        states = list(runs.glob("pipeline-*.json"))
        assert len(states) == 1, log[-2000:]
        import json

        state = json.loads(states[0].read_text())
        gen = Path(state["stages"]["generate"]["path"])
        manifest = json.loads((gen / "manifest.json").read_text())
        assert manifest["stage"] == "generate" and list(gen.rglob("*.parquet"))
        ft = Path(state["stages"]["finetune"]["path"])
        assert json.loads((ft / "manifest.json").read_text())["languages"] == ["ug"]
        assert list(ft.glob("models/ug/*.safetensors")), "the fine-tuned model must be saved as safetensors"
        print(f"submitted pipeline finished in {time.time() - t0:.1f} s")
    finally:
        down = subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
        left = subprocess.run(["pgrep", "-f", cdir], capture_output=True, text=True).stdout.split()
        assert not left, f"cluster processes left running: {left}"
        shutil.rmtree(cdir, ignore_errors=True)
