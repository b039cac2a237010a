"""The result of grading one submission, as one typed object: Gradescope's results.json, the student's
feedback.md and the gradebook row are all views of it (nothing re-reads its own output).

A hidden-suite part appears as one scored row, ``<part>: part total`` (its points from
course_config.AUTOGRADED_PARTS less what each failed check costs, see autograder/rubric.py, never below 0;
a bonus part's row has max_score 0, so its points are extra credit that never raise the maximum),
whose output lists each distinct cause once, followed by one unscored row per check (passed or failed, with
its message and its cost). A part with no outcome (its suite could not run) is one failed row worth the whole
part, with the reason. Every message a student sees is one line of at most ``MESSAGE_CHARS`` characters.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import course_config
from autograder import rubric
from common import predictions
from common.reports import AutogradedRow
from course_config import AUTOGRADED_POINTS, BONUS_PARTS, SUITE_PARTS

MESSAGE_CHARS = 300
PARTS = tuple(course_config.AUTOGRADED_PARTS)
TOTAL_SUFFIX = ": part total"
TAMPERED_OUTPUT = "not scored: flagged for review by the course staff"


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Student-supplied text as one line of at most ``limit`` characters (whitespace runs, newlines included,
    become one space)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class TestRow:
    """One Gradescope test: a part's scored total, one of its unscored checks, or predictions.csv's score."""
    name: str
    part: str
    score: float
    max_score: float
    passed: bool
    output: str

    @property
    def scored(self) -> bool:
        """A row that carries a part's points (a part total, predictions.csv), not one of a part's checks."""
        return self.max_score > 0 or self.name.endswith(TOTAL_SUFFIX)

    def to_gradescope(self) -> dict:
        return {"name": self.name, "score": round(self.score, 4), "max_score": round(self.max_score, 4),
                "status": "passed" if self.passed else "failed", "output": self.output,
                "visibility": course_config.GRADESCOPE_TEST_VISIBILITY, "tags": [self.part]}

    @classmethod
    def from_gradescope(cls, test: dict) -> "TestRow":
        return cls(test["name"], test["tags"][0], float(test["score"]), float(test["max_score"]),
                   test["status"] == "passed", test["output"])


def _points(value: float) -> str:
    return f"{value:.3g}"


def _of(points: float) -> str:
    return f"of {points:g} point{'s' * (points != 1)}"


def _verdicts(outcomes: list[dict]) -> dict[str, str | None]:
    """Check name -> None (every case passed) or what its failed cases said: each distinct message once, in
    report order ("...; ..."), so a check run on several inputs names every one that fails, within one line."""
    failures: dict[str, list[str]] = {}
    for outcome in outcomes:
        messages = failures.setdefault(outcome["check"], [])
        message = None if outcome["passed"] else one_line(outcome["message"] or "failed")
        if message is not None and message not in messages:
            messages.append(message)
    return {check: _joined(messages) if messages else None for check, messages in failures.items()}


def _joined(messages: list[str]) -> str:
    """The messages as one line within ``MESSAGE_CHARS``: all of them, else as many whole ones as fit and the
    rest counted (each message is already within the cap)."""
    for shown in range(len(messages), 0, -1):
        rest = len(messages) - shown
        text = "; ".join(messages[:shown]) + (f"; and {rest} more failed case{'s' * (rest > 1)}" if rest else "")
        if len(text) <= MESSAGE_CHARS:
            return text
    return messages[0]


def _causes(failed: list[tuple[rubric.Check, str]], points: float) -> list[str]:
    """One line per distinct message: what it costs (at most the part's points), and which check (or how
    many) it failed."""
    by_message: dict[str, list[rubric.Check]] = {}
    for check, message in failed:
        by_message.setdefault(message, []).append(check)
    lines = []
    for message, checks in by_message.items():
        cost = _points(min(points, sum(check.cost for check in checks)))
        if len(checks) == 1:
            lines.append(f"-{cost}: {checks[0].name.split(': ', 1)[1]}: {message}")
        else:
            lines.append(f"-{cost} ({len(checks)} checks): {message}")
    return lines


def _maximum(part: str) -> float:
    """What a part adds to the maximum: its points, or 0 for a bonus part (extra credit)."""
    return 0.0 if part in BONUS_PARTS else AUTOGRADED_POINTS[part]


def _label(part: str) -> str:
    return f"{part} (bonus)" if part in BONUS_PARTS else part


def _part_tests(part: str, outcomes: list[dict]) -> list[TestRow]:
    points = AUTOGRADED_POINTS[part]
    verdicts = _verdicts(outcomes)
    checks = rubric.checks(part)
    failed = [(check, verdicts[check.name]) for check in checks if verdicts.get(check.name)]
    score = rubric.score(part, {check.name for check, _ in failed})
    if failed:
        summary = "\n".join([f"lost {_points(points - score)} {_of(points)}:", *_causes(failed, points)])
    else:
        summary = f"all {len(checks)} checks passed"
    if part in BONUS_PARTS:
        summary += f"\nbonus: up to {points:g} points of extra credit, not part of the maximum"
    tests = [TestRow(f"{part}{TOTAL_SUFFIX}", part, score, _maximum(part), not failed, summary)]
    for check in checks:
        message = verdicts.get(check.name)
        output = f"-{_points(check.cost)} {_of(points)}: {message}" if message else ""
        tests.append(TestRow(check.name, part, 0.0, 0.0, message is None, output))
    return tests


def suite_tests(outcomes: list[dict], part_errors: dict[str, str]) -> list[TestRow]:
    """Gradescope tests for the hidden suites' parts: a scored total per part, then its unscored checks."""
    tests = []
    for part in SUITE_PARTS:
        mine = [o for o in outcomes if o["part"] == part]
        if not mine:
            reason = one_line(part_errors.get(part, "its hidden tests did not run"))
            tests.append(TestRow(f"{part}{TOTAL_SUFFIX}", part, 0.0, _maximum(part), False, reason))
            continue
        tests += _part_tests(part, mine)
    return tests


def predictions_test(path, labels) -> TestRow:
    """Score predictions.csv in this (trusted) process with common.predictions."""
    points = AUTOGRADED_POINTS["predictions"]
    name = "predictions: test-set accuracy of predictions.csv"
    if path is None:
        return TestRow(name, "predictions", 0.0, points, False, f"no {course_config.PREDICTIONS_FILENAME} submitted")
    result = predictions.grade_file(path, labels)
    if result.score is None:
        return TestRow(name, "predictions", 0.0, points, False, result.message)
    score = result.score
    return TestRow(name, "predictions", score.points, points, True,
                   f"{ACCURACY_PREFIX}{score.accuracy:.2%} ({score.correct}/{score.total}) -> {score.points:.2f} of "
                   f"{points:g} points")


ACCURACY_PREFIX = "accuracy "   # how the scored predictions row begins (``Results.accuracy_line`` reads it)


@dataclass
class Results:
    """One submission's grading: its tests and what staff need to know. A submission flagged as tampered scores
    0 in every test until staff look at it; ``staff_message`` says why, ``sandbox`` which sandbox graded it,
    ``runs`` how many child runs it took, ``needs_manual`` the parts a TA grades by hand (and what kept them
    from being judged: a construct torch.export cannot capture, or a program unlike the live object; they
    score 0 here), ``review`` the static review's findings and the programs unlike their live objects (lines
    worth a human look; they never change a score)."""
    tests: list[TestRow]
    device: str = "cpu"
    status: str = "ok"
    staff_message: str | None = None
    sandbox: str = "subprocess"
    runs: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)      # notes for the student, one line each
    needs_manual: dict[str, str] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)   # stage -> seconds (autograder/profile.py)

    def __post_init__(self):
        self.problems = [one_line(problem) for problem in self.problems]
        if self.status == "tampered":
            self.tests = [replace(t, score=0.0, passed=False, output=TAMPERED_OUTPUT) for t in self.tests]

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 2)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 2)

    def part_points(self) -> dict[str, float]:
        """Points earned per autograded part (every part of the registry, 0 where it has no test)."""
        points = {part: 0.0 for part in PARTS}
        for test in self.tests:
            points[test.part] += test.score
        return {part: round(value, 2) for part, value in points.items()}

    def bonus_earned(self) -> float:
        return round(sum(t.score for t in self.tests if t.part in BONUS_PARTS), 2)

    def _points_text(self, of: str) -> str:
        """'27 / 27 + 2 bonus': the points toward the maximum, then the extra credit earned (if any)."""
        bonus = self.bonus_earned()
        extra = f" + {bonus:g} bonus" if bonus else ""
        return f"{round(self.score - bonus, 2):g}{of}{self.max_score:g}{extra}"

    def summary_line(self) -> str:
        bonus = f" (bonus parts: up to {course_config.AUTOGRADED_BONUS:g} extra)" if BONUS_PARTS else ""
        return (f"{self._points_text(' of ')} autograded points of {course_config.ASSIGNMENT_ID}{bonus}, "
                f"graded on {self.device}.")

    def accuracy_line(self) -> str | None:
        """The test-set accuracy of predictions.csv, as the predictions row says it, or None when not scored."""
        for test in self.tests:
            if test.part == "predictions" and test.passed and test.output.startswith(ACCURACY_PREFIX):
                return f"{course_config.PREDICTIONS_FILENAME}: test-set {test.output.split(' -> ')[0]}"
        return None

    def to_gradescope(self) -> dict:
        """Gradescope's results.json (``extra_data`` is shown to staff, not students)."""
        lines = [self.summary_line(), *(f"Note: {p}" for p in self.problems)]
        return {"score": self.score, "execution_time": round(self.seconds, 2), "output": "\n".join(lines),
                "tests": [t.to_gradescope() for t in self.tests],
                "stdout_visibility": "hidden",   # Gradescope's default, said explicitly: nothing of the student's is printed
                "extra_data": {"status": self.status, "staff_message": self.staff_message, "device": self.device,
                               "sandbox": self.sandbox, "runs": self.runs, "problems": self.problems,
                               "needs_manual_grading": self.needs_manual, "review": self.review,
                               "timings": self.timings}}

    @classmethod
    def load(cls, path: Path) -> "Results":
        """The one reader of a results.json this module wrote (grade-all's reuse, the gradebook import, final
        grades). FileNotFoundError when there is none; ValueError when it is not one (too large, not JSON,
        fields missing or of the wrong type)."""
        with open(path, "rb") as handle:
            data = handle.read(RESULTS_MAX_BYTES + 1)
        if len(data) > RESULTS_MAX_BYTES:
            raise ValueError(f"{path} is over {RESULTS_MAX_BYTES // 2**20} MB")
        try:
            return cls.from_gradescope(json.loads(data.decode("utf-8")))
        except (KeyError, TypeError, IndexError, AttributeError, RecursionError) as problem:
            raise ValueError(f"{path} is not a results.json of this grader ({type(problem).__name__})") from problem

    @classmethod
    def from_gradescope(cls, data: dict) -> "Results":
        """A results.json this module wrote (grade-all reuses the results of unchanged submissions)."""
        extra = data["extra_data"]
        results = cls([TestRow.from_gradescope(t) for t in data["tests"]], device=extra["device"],
                      staff_message=extra.get("staff_message"), sandbox=extra.get("sandbox", ""),
                      runs=extra.get("runs", 0), seconds=data.get("execution_time", 0.0),
                      problems=extra.get("problems", []), needs_manual=extra.get("needs_manual_grading", {}),
                      review=extra.get("review", []), timings=extra.get("timings", {}))
        results.status = extra.get("status", "ok")   # set after __post_init__: stored scores are already final
        return results

    def gradebook_row(self, student: str, how: str = "graded") -> AutogradedRow:
        """The gradebook row: points per part, total, status and the count of review findings (staff only).
        The status is ``how`` ('graded', 'unchanged') unless the grading's verdict is not 'ok' ('needs manual
        grading', 'timeout', 'memory', 'processes', 'disk', 'exited', 'error', 'tampered')."""
        return AutogradedRow(student, self.part_points(), self.score,
                             how if self.status == "ok" or how != "graded" else self.status, len(self.review))

    def feedback_markdown(self) -> str:
        """The student's feedback: points per part, then what to fix, each cause once per part; at most
        ``FEEDBACK_MAX_BYTES``, every note one line of at most ``MESSAGE_CHARS`` characters."""
        earned = self.part_points()
        lines = [f"# {course_config.ASSIGNMENT_ID} autograder feedback", "",
                 f"**{self._points_text(' / ')} autograded points** "
                 f"(graded on {self.device}; written answers are graded by hand; bonus points are extra credit "
                 "beyond the maximum).", "",
                 "| part | points |", "| --- | --- |"]
        lines += [f"| {_label(part)} | {earned[part]:g} / {AUTOGRADED_POINTS[part]:g} |" for part in earned]
        if self.accuracy_line():
            lines += ["", self.accuracy_line()]
        failed = [t for t in self.tests if not t.passed and t.scored]
        if failed:
            lines += ["", "## What to fix"]
            for test in failed:
                causes = test.output.splitlines() or [""]
                lines += ["", f"**{_label(test.part)}** ({earned[test.part]:g} / {AUTOGRADED_POINTS[test.part]:g}): "
                              f"{causes[0]}"]
                lines += [f"- {cause}" for cause in causes[1:]]
        if self.problems:
            lines += ["", "## Notes", ""] + [f"- {one_line(p)}" for p in self.problems]
        return _bounded(lines)


RESULTS_MAX_BYTES = 16 * 1024 * 1024   # results.json: every check's message is bounded, so far more than one needs
FEEDBACK_MAX_BYTES = 16 * 1024   # feedback.md, UTF-8; results.json keeps every check and note
_FEEDBACK_CUT = (f"*The feedback was cut here to stay under {FEEDBACK_MAX_BYTES // 1024} KB: results.json "
                 f"(the autograder's results on Gradescope) has every check and note.*")


def _bounded(lines: list[str], limit: int = FEEDBACK_MAX_BYTES) -> str:
    """``lines`` as a text of at most ``limit`` UTF-8 bytes: cut at a line boundary, with a closing line saying
    so, when they are longer. Characters UTF-8 cannot encode (lone surrogates) become '?'."""
    lines = [line.encode("utf-8", "replace").decode("utf-8") for line in lines]
    text = "\n".join(lines) + "\n"
    if len(text.encode("utf-8")) <= limit:
        return text
    budget, kept = limit - len(f"\n{_FEEDBACK_CUT}\n".encode("utf-8")), []
    for line in lines:
        budget -= len(line.encode("utf-8")) + 1
        if budget < 0:
            break
        kept.append(line)
    return "\n".join([*kept, "", _FEEDBACK_CUT]) + "\n"


