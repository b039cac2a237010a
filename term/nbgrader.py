"""Running nbgrader from the kit: the one place that starts it (``make release`` publishes with it, the term's
import runs ``nbgrader autograde`` with it, the tests drive a course with it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import course_config


def run_nbgrader(*args: str, cwd: Path = course_config.REPO_ROOT) -> subprocess.CompletedProcess:
    """Run an nbgrader command with this interpreter, capturing its output."""
    # nbgrader runs `alembic` by name: put this interpreter's bin/ (the venv's) first on PATH.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True, text=True, env=env)


def default_db_url(course: Path) -> str:
    """nbgrader's own default: ``gradebook.db`` at the course root."""
    return f"sqlite:///{course.resolve() / 'gradebook.db'}"
