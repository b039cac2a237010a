"""The rerun and blame policy: run a stage until a run finishes, and when one is stopped (a time, memory, process
or disk limit) or dies, decide from its report what to blame and leave out of the next run:

- a statement of a notebook's code that was loading -> the next run skips it (``MAX_STATEMENT_BLAMES`` per
  module, then the whole module is marked broken);
- a program the judge was loading -> the checks that need it fail, saying so;
- a test -> its part gets 0 with the reason and the next run leaves it out;
- the submission's time running out -> the parts left get no outcome; nothing to blame -> the kit's own error.

A report that cannot come from a genuine run flags the submission as tampered. ``run_once`` (the runner's)
starts one child of the stage and returns its ``Attempt``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from course_config import GRADED_NOTEBOOKS, SUITE_PARTS
from autograder import profile
from autograder.child_report import Attempt, Forgery, check_genuine, notebook_name, what_was_running
from autograder.results import one_line
from autograder.stages import JUDGE, Stage
from autograder.student_side.probes import PROGRAM_IDS
from autograder.student_side.protocol import part_of
from autograder.suite_run import SuiteRun

log = logging.getLogger("autograder.runner")
# Statements of one module that may each stop a run (and be skipped in the next) before the whole module is.
MAX_STATEMENT_BLAMES = 2
# The worst a submission can force in one stage: one stop per part, per program, per blamed statement and per
# module, then a clean run.
MAX_RUNS = len(SUITE_PARTS) + len(PROGRAM_IDS) + len(GRADED_NOTEBOOKS) * (MAX_STATEMENT_BLAMES + 1) + 1
# Skipped statements reported per module, and characters of each line, in the student's feedback.
PROBLEMS_PER_MODULE, PROBLEM_CHARS = 20, 300


@dataclass
class Skips:
    """What the next run leaves out: modules whose loading stopped a run, and statements that did (by notebook
    key, then ``code cell C, line L``); the values are the reasons the child reports."""
    modules: dict[str, str] = field(default_factory=dict)
    statements: dict[str, dict[str, str]] = field(default_factory=dict)


def run_until_finished(stage: Stage, context, parts: list[str], run: SuiteRun,
                       run_once: Callable[[Stage, object, list[str], Skips], Attempt]) -> list[dict]:
    """Run ``stage`` for ``parts`` until a run finishes, blaming and leaving out whatever stops it; returns the
    finished run's outcomes (its parts' errors and the problems go into ``run``)."""
    skips = Skips()
    load_problems: dict[str, list[str]] = {}   # notebook key -> skipped statements, from the last run that loaded it
    parts = list(parts)
    outcomes: list[dict] = []
    runs = 0
    while parts and runs < MAX_RUNS:
        runs += 1
        run.runs += 1
        log.debug("%s stage, run %d: parts %s", stage.name, runs, ", ".join(parts))
        attempt = run_once(stage, context, parts, skips)
        profile.add(run.timings, profile.child_stages(stage.name, attempt.report, attempt.started, attempt.ended))
        if attempt.report:   # the child's text: kept short before it reaches the student's feedback
            load_problems.update({key: [one_line(line, PROBLEM_CHARS) for line in lines[:PROBLEMS_PER_MODULE]]
                                  for key, lines in attempt.report.get("problems", {}).items()
                                  if key in GRADED_NOTEBOOKS})
        try:
            if attempt.forgery:
                raise Forgery(attempt.forgery)
            if attempt.finished.stop is None and attempt.report and attempt.report.get("finished") is True:
                check_genuine(stage, context.judged, attempt, parts)
                outcomes = [dict(t, message=one_line(t["message"])) for t in attempt.report["tests"]]
                device = attempt.report.get("device")
                run.device = device if device in ("cpu", "cuda") else context.device
                break
        except Forgery as forgery:
            log.warning("%s stage, run %d: flagged as tampered: %s", stage.name, runs, forgery)
            run.tampered(f" ({stage.name} stage): {forgery}")
            return []
        stop = attempt.finished.stop
        status = stop.kind if stop else "exited"
        cause = stop.detail if stop else (f"the grading process exited (status {attempt.finished.exit_code}: "
                                          "os._exit, sys.exit outside a test, or a crash)")
        reason = f"{cause} {what_was_running(attempt.report)}"
        report = attempt.report or {}
        loading, statement, program = report.get("loading"), report.get("statement"), report.get("program")
        if stage.student_code and loading in GRADED_NOTEBOOKS and loading not in skips.modules:
            blamed = skips.statements.setdefault(loading, {})
            if (isinstance(statement, str) and len(statement) <= 40 and statement not in blamed
                    and len(blamed) < MAX_STATEMENT_BLAMES):
                blamed[statement] = f"it stopped an earlier grading run: {cause}"
                log.info("%s stage, run %d: %s of %s blamed (%s); the next run skips it", stage.name, runs,
                         statement, notebook_name(loading), cause)
                run.note(status, f"{notebook_name(loading)}: {statement} was skipped: {cause}")
            else:
                skips.modules[loading] = reason
                log.info("%s stage, run %d: %s marked broken (%s)", stage.name, runs, notebook_name(loading), reason)
                run.note(status, f"{notebook_name(loading)}: {reason}")
        elif stage is JUDGE and program in PROGRAM_IDS and program not in context.unloadable:
            context.unloadable[program] = f"the exported program could not be judged: {cause} while it loaded"
            if context.judged is not None:   # else the export is still running and writes the manifest last
                context.write_manifest()
            log.info("judge stage, run %d: program %s blamed (%s); the next run fails the checks that need it",
                     runs, program, cause)
            run.note(status, f"{program}: {context.unloadable[program]}")
        elif report.get("current") and part_of(report["current"]) in parts:
            part = part_of(report["current"])
            parts.remove(part)
            log.info("%s stage, run %d: part %s blamed (%s); the next run leaves it out", stage.name, runs, part,
                     reason)
            run.part_errors[part] = reason
            run.note(status, f"{part}: {reason}")
        elif stop is not None and time.monotonic() >= context.deadline:   # the submission's time ran out
            log.info("%s stage, run %d: %s; parts %s get no outcome", stage.name, runs, reason, ", ".join(parts))
            run.note(status, reason)
            for part in parts:
                run.part_errors[part] = reason
            return []
        else:   # nothing to blame: the kit's own problem, or a crash we cannot place
            tail = " | ".join(attempt.finished.output.strip().splitlines()[-3:])
            log.error("%s stage, run %d could not run: %s; output: %s", stage.name, runs, reason, tail or "(none)")
            run.flag("error", f"the {stage.name} stage could not run: {reason}; output: {tail or '(none)'}",
                     f"the hidden tests could not run ({reason}); the course staff has been told")
            for part in parts:
                run.part_errors[part] = reason
            return []
    if stage.student_code:
        run.problems = [line for key in GRADED_NOTEBOOKS for line in load_problems.get(key, [])] + [
            line for line in run.problems if not any(line in lines for lines in load_problems.values())]
    return outcomes
