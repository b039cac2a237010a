"""Turn suite outcomes and the predictions score into Gradescope's results.json and the student's feedback.md.

A hidden-suite part appears as one scored row, ``<part>: part total`` (its points from
course_config.AUTOGRADED_POINTS less what each failed check costs, see autograder/rubric.py, never below 0),
whose output lists each distinct cause once, followed by one unscored row per check (passed or failed, with
its message and its cost). A part with no outcome (its suite could not run) is one failed row worth the whole
part, with the reason. Every message a student sees is one line of at most ``MESSAGE_CHARS`` characters.
"""
from __future__ import annotations

import grade_predictions

import course_config
from autograder import rubric

SUITE_PARTS = ("simplenn", "simplenn_bn", "swish", "l1", "resnet20")
MESSAGE_CHARS = 300


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Student-supplied text as one line of at most ``limit`` characters (whitespace runs, newlines included,
    become one space)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _test(name: str, part: str, score: float, max_score: float, passed: bool, output: str) -> dict:
    return {"name": name, "score": round(score, 4), "max_score": round(max_score, 4),
            "status": "passed" if passed else "failed", "output": output,
            "visibility": course_config.GRADESCOPE_TEST_VISIBILITY, "tags": [part]}


def _points(value: float) -> str:
    return f"{value:.3g}"


def _verdicts(outcomes: list[dict]) -> dict[str, str | None]:
    """Check name -> None (passed) or the message of its first failed case, in report order."""
    verdicts: dict[str, str | None] = {}
    for outcome in outcomes:
        if verdicts.get(outcome["check"]) is None:   # not seen yet, or every case so far passed
            verdicts[outcome["check"]] = None if outcome["passed"] else one_line(outcome["message"] or "failed")
    return verdicts


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


def _part_tests(part: str, outcomes: list[dict]) -> list[dict]:
    points = course_config.AUTOGRADED_POINTS[part]
    verdicts = _verdicts(outcomes)
    checks = rubric.checks(part)
    failed = [(check, verdicts[check.name]) for check in checks if verdicts.get(check.name)]
    score = rubric.score(part, {check.name for check, _ in failed})
    if failed:
        summary = "\n".join([f"lost {_points(points - score)} of {points:g} points:", *_causes(failed, points)])
    else:
        summary = f"all {len(checks)} checks passed"
    tests = [_test(f"{part}: part total", part, score, points, not failed, summary)]
    for check in checks:
        message = verdicts.get(check.name)
        output = f"-{_points(check.cost)} of {points:g} points: {message}" if message else ""
        tests.append(_test(check.name, part, 0.0, 0.0, message is None, output))
    return tests


def suite_tests(outcomes: list[dict], part_errors: dict[str, str]) -> list[dict]:
    """Gradescope tests for the hidden suites' parts: a scored total per part, then its unscored checks."""
    tests = []
    for part in SUITE_PARTS:
        mine = [o for o in outcomes if o["part"] == part]
        if not mine:
            reason = one_line(part_errors.get(part, "its hidden tests did not run"))
            tests.append(_test(f"{part}: part total", part, 0.0, course_config.AUTOGRADED_POINTS[part], False, reason))
            continue
        tests += _part_tests(part, mine)
    return tests


def predictions_test(path, labels) -> dict:
    """Score predictions.csv in this (trusted) process with grade_predictions."""
    points = course_config.AUTOGRADED_POINTS["predictions"]
    name = "predictions: test-set accuracy of predictions.csv"
    if path is None:
        return _test(name, "predictions", 0.0, points, False, f"no {course_config.PREDICTIONS_FILENAME} submitted")
    result = grade_predictions.grade_file(path, labels)
    if result.score is None:
        return _test(name, "predictions", 0.0, points, False, result.message)
    score = result.score
    return _test(name, "predictions", score.points, points, True,
                 f"accuracy {score.accuracy:.2%} ({score.correct}/{score.total}) -> {score.points:.2f} of {points:g} points")


def results_json(tests: list[dict], *, seconds: float, run, problems: list[str], review: list[str] = ()) -> dict:
    """Gradescope's results.json. A submission flagged as tampered scores 0 in every test until staff look at it;
    ``extra_data`` (shown to staff, not students) says why, which sandbox graded it, how many runs it took, which
    parts were graded in the student's own process (``unverified``: what kept them from being exported) and
    the static review's findings (``review``: lines worth a human look; they never change a score)."""
    problems = [one_line(problem) for problem in problems]
    if run.status == "tampered":
        tests = [dict(t, score=0.0, status="failed", output="not scored: flagged for review by the course staff")
                 for t in tests]
    score, max_score = round(sum(t["score"] for t in tests), 2), round(sum(t["max_score"] for t in tests), 2)
    lines = [f"{score:g} of {max_score:g} autograded points of {course_config.ASSIGNMENT_ID}, graded on {run.device}."]
    lines += [f"Note: {p}" for p in problems]
    return {"score": score, "execution_time": round(seconds, 2), "output": "\n".join(lines), "tests": tests,
            "stdout_visibility": "hidden",   # Gradescope's default, said explicitly: the grader prints nothing of the student's
            "extra_data": {"status": run.status, "staff_message": run.staff_message, "device": run.device,
                           "sandbox": run.sandbox, "runs": run.runs, "problems": problems,
                           "unverified": run.unverified, "review": list(review)}}


def part_points(results: dict) -> dict[str, float]:
    points = {part: 0.0 for part in (*SUITE_PARTS, "predictions")}
    for test in results["tests"]:
        points[test["tags"][0]] += test["score"]
    return {part: round(value, 2) for part, value in points.items()}


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


def feedback_markdown(results: dict) -> str:
    """The student's feedback: points per part, then what to fix, each cause once per part; at most
    ``FEEDBACK_MAX_BYTES``, every note one line of at most ``MESSAGE_CHARS`` characters."""
    earned = part_points(results)
    lines = [f"# {course_config.ASSIGNMENT_ID} autograder feedback", "",
             f"**{results['score']:g} / {round(sum(t['max_score'] for t in results['tests']), 2):g} autograded points** "
             f"(graded on {results['extra_data']['device']}; written answers are graded by hand).", "",
             "| part | points |", "| --- | --- |"]
    lines += [f"| {part} | {earned[part]:g} / {course_config.AUTOGRADED_POINTS[part]:g} |" for part in earned]
    failed = [t for t in results["tests"] if t["status"] == "failed" and t["max_score"] > 0]
    if failed:
        lines += ["", "## What to fix"]
        for test in failed:
            part = test["tags"][0]
            causes = test["output"].splitlines() or [""]
            lines += ["", f"**{part}** ({earned[part]:g} / {course_config.AUTOGRADED_POINTS[part]:g}): {causes[0]}"]
            lines += [f"- {cause}" for cause in causes[1:]]
    if results["extra_data"]["problems"]:
        lines += ["", "## Notes", ""] + [f"- {one_line(p)}" for p in results["extra_data"]["problems"]]
    return _bounded(lines)
