"""platform/ must stay a plain folder: an importable ``platform`` shadows the stdlib module."""

import subprocess
import sys

from conftest import REPO


def test_platform_is_not_a_package():
    assert not (REPO / "platform" / "__init__.py").exists()
    assert not list((REPO / "platform").glob("*.py")), "no modules directly in platform/"


def test_stdlib_platform_still_works_from_repo_root():
    # Run from the repo root, where a shadowing package would be found first.
    code = "import platform, uuid; print(platform.system()); uuid.uuid4()"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_ruff_keeps_a005_on():
    text = (REPO / "pyproject.toml").read_text()
    assert '"A"' in text, "ruff rule family A (A005: stdlib shadowing) must stay selected"


def test_ci_runs_exactly_the_readme_test_command():
    import re

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    assert test_cmd in (REPO / ".ci" / "run").read_text().splitlines()
