"""Run the hidden suites on extracted student modules in a child process, and read its report.

The child is ``python -m pytest autograder/suites`` with only the suites' own ini file, no plugin
autoloading, a scrubbed environment, a private HOME and temp dir, a wall-clock limit that kills its whole
process group, and the report path in a folder the student code is not told about. The parent trusts
nothing the child prints: outcomes come only from the report file.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import course_config

SUITES_DIR = Path(__file__).resolve().parent / "suites"
STUDENT_PACKAGE_DIR = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID   # holds tools/


@dataclass
class SuiteRun:
    tests: list[dict] = field(default_factory=list)   # {"part", "name", "weight", "passed", "message"}
    device: str = "cpu"
    error: str | None = None                          # why there is no (complete) report
    seconds: float = 0.0


def _child_env(student_dir: Path, report: Path, device: str, home: Path) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home), "TMPDIR": str(home),
        "PYTHONPATH": os.pathsep.join([str(course_config.REPO_ROOT), str(STUDENT_PACKAGE_DIR)]),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg",
        # The suites use tiny batches: one thread is as fast, and parallel gradings do not fight over cores.
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "HW2_STUDENT_DIR": str(student_dir), "HW2_REPORT_PATH": str(report), "HW2_GRADING_DEVICE": device,
    }
    for name in ("CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_suites(student_dir: Path, device: str, timeout_s: float = course_config.GRADING_TIMEOUT_S) -> SuiteRun:
    """Run every hidden suite against the modules in ``student_dir`` on ``device`` ('cpu' or 'cuda')."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hw2-grading-") as private:
        report, home = Path(private) / "report.json", Path(private) / "home"
        home.mkdir()
        command = [sys.executable, "-m", "pytest", str(SUITES_DIR), "-c", str(SUITES_DIR / "pytest.ini"),
                   "--rootdir", str(SUITES_DIR), "-q", "-p", "no:cacheprovider",
                   "-p", "autograder.suites.report_plugin"]
        child = subprocess.Popen(command, cwd=home, env=_child_env(student_dir, report, device, home),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            output, _ = child.communicate(timeout=timeout_s)
            error = None
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            error = f"grading stopped after the {timeout_s:g} s limit (an endless loop or very slow code?)"
        run = SuiteRun(seconds=time.perf_counter() - started, device=device)
        if report.is_file():
            data = json.loads(report.read_text(encoding="utf-8"))
            run.tests, run.device = data["tests"], data.get("device", device)
        if error is None and not run.tests:
            tail = output.decode("utf-8", "replace").strip().splitlines()[-3:]
            error = "the hidden tests could not run: " + (" | ".join(tail) if tail else f"exit {child.returncode}")
        run.error = error
    return run
