"""Shared fixtures of the Python package's tests (run by scripts/test with PYTHONPATH pointing at
<build>/python and MMKD_CLI at the same build's mmkd)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CONFIGS = REPO / "configs"

# The tiny network of the C++ tests: seconds per run on two cores.
TINY = {
    "data.preset": "tiny",
    "train.epochs": 2,
    "model.d_model": 8,
    "model.layers": 1,
    "model.heads": 2,
    "train.progress": False,
    "train.threads": 1,
}


def cli_path() -> str:
    return os.environ.get("MMKD_CLI", str(REPO / "build" / "mmkd"))


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The mmkd command line, single-threaded (as the Python runs it is compared with)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([cli_path(), *args], capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"mmkd {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def set_args(overrides: dict) -> list:
    args = []
    for key, value in overrides.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        args += ["--set", f"{key}={text}"]
    return args


def run_python(code: str, cwd: Path, **kwargs) -> subprocess.Popen:
    """A fresh interpreter with this one's module path (for what must not share this process:
    signals, a study's fork)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, text=True, **kwargs)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """A Complete teacher and a distilled student 5 (EDAM-S down), trained once by the CLI."""
    import mmkd  # noqa: F401  (fail early with the import error, not in a subprocess)

    root = tmp_path_factory.mktemp("tiny_runs")
    run_cli("train", "--config", str(CONFIGS / "teacher_complete.yaml"), "--run", str(root / "teacher"),
            *set_args(TINY))
    run_cli("distill", "--config", str(CONFIGS / "table1" / "c5_edam_down.yaml"), "--teacher",
            str(root / "teacher"), "--run", str(root / "student"), *set_args(TINY))
    return root
