"""Turn suite outcomes and the predictions score into Gradescope's results.json and the student's feedback.md.

Points come from course_config.AUTOGRADED_POINTS: a part's points are shared among its tests in
proportion to their weights (``@pytest.mark.points``). A part with no test outcome (its suite could not
run) appears as one failed test worth the whole part, with the reason.
"""
from __future__ import annotations

import grade_predictions

import course_config

SUITE_PARTS = ("simplenn", "simplenn_bn", "swish", "l1", "resnet20")


def _test(name: str, part: str, score: float, max_score: float, passed: bool, output: str) -> dict:
    return {"name": name, "score": round(score, 4), "max_score": round(max_score, 4),
            "status": "passed" if passed else "failed", "output": output,
            "visibility": course_config.GRADESCOPE_TEST_VISIBILITY, "tags": [part]}


def suite_tests(outcomes: list[dict], part_errors: dict[str, str]) -> list[dict]:
    """Gradescope tests for the hidden suites' parts."""
    tests = []
    for part in SUITE_PARTS:
        points = course_config.AUTOGRADED_POINTS[part]
        mine = [o for o in outcomes if o["part"] == part]
        if not mine:
            reason = part_errors.get(part, "its hidden tests did not run")
            tests.append(_test(f"{part}: hidden tests", part, 0.0, points, False, reason))
            continue
        total_weight = sum(o["weight"] for o in mine)
        for outcome in mine:
            share = points * outcome["weight"] / total_weight
            tests.append(_test(outcome["name"], part, share if outcome["passed"] else 0.0, share,
                               outcome["passed"], outcome["message"]))
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


def results_json(tests: list[dict], *, seconds: float, run, problems: list[str]) -> dict:
    """Gradescope's results.json. A submission flagged as tampered scores 0 in every test until staff look at it;
    ``extra_data`` (shown to staff, not students) says why, which sandbox graded it and how many runs it took."""
    if run.status == "tampered":
        tests = [dict(t, score=0.0, status="failed", output="not scored: flagged for review by the course staff")
                 for t in tests]
    score, max_score = round(sum(t["score"] for t in tests), 2), round(sum(t["max_score"] for t in tests), 2)
    lines = [f"{score:g} of {max_score:g} autograded points of {course_config.ASSIGNMENT_ID}, graded on {run.device}."]
    lines += [f"Note: {p}" for p in problems]
    return {"score": score, "execution_time": round(seconds, 2), "output": "\n".join(lines), "tests": tests,
            "stdout_visibility": "hidden",   # Gradescope's default, said explicitly: the grader prints nothing of the student's
            "extra_data": {"status": run.status, "staff_message": run.staff_message, "device": run.device,
                           "sandbox": run.sandbox, "runs": run.runs, "problems": problems}}


def part_points(results: dict) -> dict[str, float]:
    points = {part: 0.0 for part in (*SUITE_PARTS, "predictions")}
    for test in results["tests"]:
        points[test["tags"][0]] += test["score"]
    return {part: round(value, 2) for part, value in points.items()}


def feedback_markdown(results: dict) -> str:
    earned = part_points(results)
    lines = [f"# {course_config.ASSIGNMENT_ID} autograder feedback", "",
             f"**{results['score']:g} / {round(sum(t['max_score'] for t in results['tests']), 2):g} autograded points** "
             f"(graded on {results['extra_data']['device']}; written answers are graded by hand).", "",
             "| part | points |", "| --- | --- |"]
    lines += [f"| {part} | {earned[part]:g} / {course_config.AUTOGRADED_POINTS[part]:g} |" for part in earned]
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    if failed:
        lines += ["", "## What to fix", ""] + [f"- **{t['name']}**: {t['output']}" for t in failed]
    if results["extra_data"]["problems"]:
        lines += ["", "## Notes", ""] + [f"- {p}" for p in results["extra_data"]["problems"]]
    return "\n".join(lines) + "\n"
