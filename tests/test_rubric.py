"""The rubric (autograder/rubric.py) and how results.json and feedback.md present it. Fast: nothing is graded.

What each corpus mistake really costs is asserted by grading it (test_autograder_corpus.py); here the
decisions themselves are checked: defining features cost at least half a part, slips little, every part can
reach 0, and docs/grader-design.md shows the rubric and the mistakes table as the code has them.
"""
from __future__ import annotations

import textwrap

import pytest

import course_config
from common.predictions import load_labels
from autograder import results, rubric
from course_config import SUITE_PARTS
from fixtures import corpus
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("part", SUITE_PARTS)
def test_every_check_has_a_deduction_and_a_broken_part_reaches_zero(part):
    checks = rubric.checks(part)
    assert checks and all(0 < check.deduction <= 1 for check in checks)
    assert sum(check.deduction for check in checks) >= 1, "a submission failing every check must score 0"
    assert rubric.score(part, {check.name for check in checks}) == 0
    assert rubric.score(part, set()) == course_config.AUTOGRADED_POINTS[part]


def test_a_part_scores_its_points_less_each_failed_check_never_below_zero():
    shortcuts = next(c for c in rubric.checks("resnet20") if c.name.startswith("resnet20: Shortcuts add"))
    pooling = next(c for c in rubric.checks("resnet20") if "average pooling" in c.name)
    assert rubric.score("resnet20", {shortcuts.name}) == pytest.approx(8 - 4)
    assert rubric.score("resnet20", {shortcuts.name, pooling.name}) == pytest.approx(8 - 4 - 0.5)
    assert rubric.score("resnet20", {"resnet20: a check that does not exist"}) == 8


def test_defining_mistakes_cost_at_least_half_their_part_and_slips_at_most_an_eighth():
    severities = {m.id: m.severity for m in corpus.MUTANTS}
    for mutant in corpus.MUTANTS:
        for part, share in mutant.loses.items():
            if mutant.severity == "defining":
                assert share >= 1 / 2, (mutant.id, share)
            elif mutant.severity == "slip":
                assert share <= 1 / 8, (mutant.id, share)
    assert {"resnet-no-shortcuts", "resnet-no-downsampling", "bn-before-conv", "resnet-blocks-without-bn",
            "swish-uses-silu", "l1-on-data"} <= {i for i, s in severities.items() if s == "defining"}
    assert {"resnet-max-pool", "resnet-5x5-stem"} <= {i for i, s in severities.items() if s == "slip"}


def test_the_design_doc_shows_the_rubric_and_what_each_mistake_costs():
    doc = (REPO_ROOT / "docs" / "grader-design.md").read_text(encoding="utf-8")
    assert rubric.markdown_table(SUITE_PARTS) in doc, "paste `python -m autograder.rubric` into docs/grader-design.md"
    assert corpus.mistakes_table() in doc, "paste `python -m fixtures.corpus` into docs/grader-design.md"


@pytest.mark.parametrize("source, problem", [
    ("def test_a():\n    '''A check'''\n", "has no @pytest.mark.deduction"),
    ("@pytest.mark.deduction(2)\ndef test_a():\n    '''A check'''\n", "between 0 and 1"),
    ("@pytest.mark.deduction(x)\ndef test_a():\n    '''A check'''\n", "a number or arithmetic of numbers"),
    ("@pytest.mark.deduction(1 / 2)\ndef test_a():\n    '''Same'''\n\n\n"
     "@pytest.mark.deduction(1 / 2)\ndef test_b():\n    '''Same'''\n", "the same name"),
])
def test_a_suite_the_rubric_cannot_read_is_refused_with_the_reason(source, problem, tmp_path):
    path = tmp_path / "test_demo.py"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(rubric.RubricError, match=problem):
        rubric.suite_checks("demo", path)


def _outcome(check: rubric.Check, passed: bool, message: str = "", case: str | None = None) -> dict:
    name = f"{check.name} [{case}]" if case else check.name
    return {"nodeid": name, "part": check.part, "check": check.name, "name": name, "passed": passed,
            "message": message}


def test_results_show_a_scored_part_total_with_each_cause_once_then_unscored_checks():
    checks = rubric.checks("simplenn")
    crash = "SimpleNN.forward raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    outcomes = [_outcome(checks[0], True, case="1"), _outcome(checks[0], False, crash, case="5")]
    outcomes += [_outcome(check, False, crash) for check in checks[1:4]]
    outcomes += [_outcome(check, True) for check in checks[4:]]
    total, *rows = [t.to_gradescope() for t in results.suite_tests(outcomes, {}) if t.part == "simplenn"]
    points = course_config.AUTOGRADED_POINTS["simplenn"]
    assert (total["name"], total["score"], total["max_score"], total["status"]) == ("simplenn: part total", 0, points,
                                                                                    "failed")
    of = f"of {points:g} point{'s' * (points != 1)}"   # "of 1 point", "of 6 points"
    assert total["output"].splitlines() == [f"lost {points:g} {of}:", f"-{points:g} (4 checks): {crash}"]
    assert [row["name"] for row in rows] == [check.name for check in checks]
    assert all(row["max_score"] == 0 for row in rows)
    assert rows[0]["status"] == "failed" and rows[0]["output"] == f"-{checks[0].cost:.3g} {of}: {crash}"
    assert rows[-1]["status"] == "passed" and rows[-1]["output"] == ""
    feedback = results.Results(results.suite_tests(outcomes, {}), sandbox="bwrap", runs=1).feedback_markdown()
    assert feedback.count(crash) == 1


def test_a_students_message_reaches_the_results_as_one_short_line():
    check = rubric.checks("l1")[0]
    outcomes = [_outcome(c, c is not check, "x" * 5000 + "\nsecond line" if c is check else "")
                for c in rubric.checks("l1")]
    row = next(t for t in results.suite_tests(outcomes, {}) if t.name == check.name)
    assert "\n" not in row.output and len(row.output) <= results.MESSAGE_CHARS + 20


def test_a_part_without_outcomes_is_one_failed_row_worth_the_part():
    (row,) = [t for t in results.suite_tests([], {"resnet20": "ran for more than 30 s"}) if t.part == "resnet20"]
    assert (row.score, row.max_score, row.output) == (0, 8, "ran for more than 30 s")


def test_a_bonus_part_is_extra_credit_that_never_raises_the_maximum():
    """l1 is Lab 2's bonus: its total row has max_score 0, so Gradescope's and the gradebook's maximum stay at
    the regular parts' points, while a working l1_penalty still adds its points to the score."""
    assert course_config.BONUS_PARTS == ("l1",)
    everything_passes = [_outcome(check, True) for part in course_config.SUITE_PARTS for check in rubric.checks(part)]
    graded = results.Results(results.suite_tests(everything_passes, {}))
    total = next(t for t in graded.tests if t.name == "l1: part total")
    assert (total.score, total.max_score) == (2, 0) and "extra credit" in total.output
    regular = sum(course_config.AUTOGRADED_POINTS[part] for part in course_config.SUITE_PARTS if part != "l1")
    assert (graded.score, graded.max_score) == (regular + 2, regular)
    assert "| l1 (bonus) | 2 / 2 |" in graded.feedback_markdown()
    assert f"**{regular:g} / {regular:g} + 2 bonus autograded points**" in graded.feedback_markdown(), \
        "the headline says the bonus apart: full marks plus extra credit, never more points than the maximum"
    assert graded.summary_line().startswith(f"{regular:g} of {regular:g} + 2 bonus autograded points")
    broken = [_outcome(check, check.part != "l1", "l1_penalty raised") for check in
              (c for part in course_config.SUITE_PARTS for c in rubric.checks(part))]
    feedback = results.Results(results.suite_tests(broken, {})).feedback_markdown()
    assert "**l1 (bonus)** (0 / 2)" in feedback, "a failed bonus part still says what to fix"
    assert f"**{regular:g} / {regular:g} autograded points**" in feedback


def test_the_feedback_gives_the_test_accuracy_of_the_predictions(tmp_path):
    labels, predictions = tmp_path / "labels.csv", tmp_path / "predictions.csv"
    labels.write_text("Id,Label\n" + "".join(f"{i},{i % 10}\n" for i in range(100)), encoding="utf-8")
    predictions.write_text("Id,Label\n" + "".join(f"{i},{i % 10 if i < 91 else 0}\n" for i in range(100)),
                           encoding="utf-8")
    graded = results.Results([results.predictions_test(predictions, load_labels(labels))])
    assert "predictions.csv: test-set accuracy 91.00% (91/100)" in graded.feedback_markdown()
    unscored = results.Results([results.predictions_test(None, None)])
    assert "test-set accuracy" not in unscored.feedback_markdown()
    (missing,) = [t for t in results.suite_tests([], {"l1": "did not run"}) if t.part == "l1"]
    assert (missing.score, missing.max_score) == (0, 0)


def test_the_mistakes_table_lists_every_mutant():
    table = corpus.mistakes_table()
    assert all(f"`{mutant.id}`" in table for mutant in corpus.MUTANTS)
    assert textwrap.dedent(table).startswith("| mistake | part | points lost |")


def test_a_check_run_on_several_inputs_names_every_input_that_fails():
    """A parametrized check (output shape for N = 1, 5, 128) fails once, with each distinct message of its cases."""
    shape = rubric.checks("simplenn")[0]   # SimpleNN maps (N, 3, 32, 32) images to (N, 10) logits
    outcomes = [_outcome(shape, False, "expected output shape (1, 10), got (1, 5)", "1"),
                _outcome(shape, True, "", "5"),
                _outcome(shape, False, "expected output shape (128, 10), got (128, 5)", "128"),
                _outcome(shape, False, "expected output shape (1, 10), got (1, 5)", "1-again")]
    row = next(t for t in results.suite_tests(outcomes, {}) if t.name == shape.name)
    assert not row.passed
    assert row.output.endswith("expected output shape (1, 10), got (1, 5); "
                               "expected output shape (128, 10), got (128, 5)"), row.output
    many = [_outcome(shape, False, f"expected output shape ({n}, 10), got ({n}, 5) " + "x" * 40, str(n))
            for n in range(20)]
    row = next(t for t in results.suite_tests(many, {}) if t.name == shape.name)
    assert len(row.output) <= results.MESSAGE_CHARS + 20 and "\n" not in row.output
    assert row.output.endswith("more failed cases") and "..." not in row.output, row.output
