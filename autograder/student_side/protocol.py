"""The contract between the grading parent and its children, imported by all three sides.

* **Environment** of every child: the names below. The parent fills them (``autograder/stages.py``); the
  student process (``student_code``, ``exports/``) and the judge (``autograder/suites``) read them.
* **Report** each child's pytest writes through ``report_plugin`` (at most ``REPORT_MAX_BYTES``; the parent
  reads it as hostile data)::

      {"nonce", "device", "finished", "exit_status", "current", "loading", "statement", "program",
       "problems": {notebook key: [line, ...]}, "tests": [{"nodeid", "part", "check", "name", "passed", "message"}]}

  ``loading``/``statement``: the student's notebook (and statement) being loaded; ``program``: the program the
  judge is loading. A run stopped there is blamed on that statement or that program.

* **Programs**: the student process writes one ``<program id>.pt2`` (``torch.export.save``, at most
  ``PROGRAM_MAX_BYTES``) per object the judge needs into ``$HW2_PROGRAMS_DIR``, under the ids of
  ``probes.PROGRAMS`` only; the parent then writes the manifest ``$HW2_MANIFEST`` for the judge, from the
  student process's report, in a folder the student process cannot write (it could plant a manifest, or a link
  the parent would write through, in the programs folder)::

      {"parts": [part id, ...], "programs": {program id: {"exported": bool, "message": str}}}

  An export test's message starting with ``UNEXPORTABLE_PREFIX`` (the object runs but ``torch.export`` cannot
  capture it) or ``MISMATCH_PREFIX`` (the program computes something else than the live object) puts its part
  up for manual grading: no verdict is taken from the student's process, whatever it says. A failed build or
  forward is the student's failure: the judge fails every check that needs that program with its message.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

STUDENT_DIR = "HW2_STUDENT_DIR"              # the extracted modules: <notebook key>.py
NOTEBOOK_NAMES = "HW2_NOTEBOOK_NAMES"        # JSON {notebook key: notebook file name}
REPORT_PATH = "HW2_REPORT_PATH"
NONCE_FD = "HW2_NONCE_FD"
GRADING_DEVICE = "HW2_GRADING_DEVICE"        # 'cpu' or 'cuda'
BROKEN_MODULES = "HW2_BROKEN_MODULES"        # JSON {notebook key: why its loading is not tried again}
SKIPPED_STATEMENTS = "HW2_SKIPPED_STATEMENTS"  # JSON {notebook key: {"code cell C, line L": why}}
PROGRAMS_DIR = "HW2_PROGRAMS_DIR"
MANIFEST = "HW2_MANIFEST"                    # the parent's programs.json, outside the programs folder
PROBE_SEED = "HW2_PROBE_SEED"                # the judge's seed for its probes, drawn per grading after the export
UNLOADABLE = "HW2_UNLOADABLE"                # JSON [program id, ...]: programs that held an earlier judging too long

PROGRAMS_MANIFEST = "programs.json"
PROGRAM_SUFFIX = ".pt2"
PROGRAM_MAX_BYTES = 32 * 2**20               # one program (a ResNet-20 program is 1.4 MB)
REPORT_MAX_BYTES = 2**20                     # a child's report (an honest one is a few kB)
UNEXPORTABLE_PREFIX = "cannot be exported: "   # how an export test's message says the object works but won't export
MISMATCH_PREFIX = "the exported program computes something else than "   # ... the live object: export-aware code?


def part_of(location: str) -> str:
    """The part id of a suite or export file's path or of a test's node id: ``test_<part>.py[::...]`` or
    ``export_<part>.py[::...]`` -> ``<part>``."""
    return Path(location.split("::")[0]).stem.removeprefix("test_").removeprefix("export_")


def check_name(part: str, docstring: str | None, function_name: str) -> str:
    """A check's name: ``<part id>: <first line of the test's docstring>`` (autograder/rubric.py names the
    checks it reads from the suites' source the same way)."""
    return f"{part}: {(docstring or function_name).strip().splitlines()[0].rstrip('.')}"


def json_env(name: str) -> dict:
    return json.loads(os.environ.get(name) or "{}")


def program_path(program_id: str) -> Path:
    return Path(os.environ[PROGRAMS_DIR]) / f"{program_id}{PROGRAM_SUFFIX}"
