"""The autograder proves itself on a corpus of submissions with known grades (fixtures/corpus.py).

Every case is graded end to end by ``autograder.grade.grade_submission`` (extraction, the hidden suites in
a child process, predictions scored in the parent) on the CPU, against the synthetic course data's labels.
Mutants and variants are graded in bundles, one case per notebook in one submission (``corpus.bundles``: a
part is judged on its own notebook only), each bundle once per worker; every case keeps its own test, which
checks the parts its case touches exactly and every part no case of its bundle touches at full marks:

* the source notebooks get every autograded point, and every valid variant does too;
* every mutant loses exactly the share of each part it breaks that the rubric decides (docs/grader-design.md,
  "What a mistake costs") and keeps full points elsewhere;
* files saved under a download suffix, in capitals or in a sub-folder are graded with a note; others are
  named in the feedback;
* the release stubs get 0 in every suite part, each failure saying "not implemented";
* hostile notebooks, missing notebooks and missing or invalid predictions get clear messages.

Each grading takes seconds (the child imports torch), so run this file with ``pytest -n 2 --dist loadgroup``
(a bundle's tests share an xdist group, so the bundle is graded on one worker only).
"""
from __future__ import annotations

import json

import nbformat
import pytest

import course_config
from common.predictions import grade_file, load_labels
from autograder import profile
from autograder.grade import grade_submission
from autograder.submission import notebook_defs
from fixtures import corpus
from fixtures.corpus import MISNAMED, MUTANTS, RELEASE_DIR, SUITE_PARTS, VARIANTS, build_case, build_submission

MUTANT_BUNDLES = corpus.bundles(MUTANTS)
VARIANT_BUNDLES = corpus.bundles(VARIANTS)
_BUNDLE_OF = {case.id: bundle for bundle in (*MUTANT_BUNDLES, *VARIANT_BUNDLES) for case in bundle}
_graded_bundles: dict[tuple[str, ...], dict] = {}   # this worker's results, by the ids of the bundle's cases

PARTS = tuple(course_config.AUTOGRADED_PARTS)
NOTEBOOK_PARTS = {key: tuple(part for part in SUITE_PARTS if course_config.AUTOGRADED_PARTS[part]["notebook"] == key)
                  for key in course_config.GRADED_NOTEBOOKS}


@pytest.fixture(scope="session")
def labels_csv(course_data):
    """The synthetic build's held-out labels: a copy of the file is a valid predictions.csv scoring 100 %."""
    return course_data[1]


@pytest.fixture(scope="session")
def labels(labels_csv):
    return load_labels(labels_csv)


def grade(submission, tmp_path, labels) -> dict:
    """results.json's content: what Gradescope and the gradebooks read."""
    return grade_submission(submission, tmp_path / "out", labels, "cpu").to_gradescope()


def part_points(result: dict) -> dict[str, float]:
    """Points per part from results.json's test scores (4 decimals; the gradebook rounds to 2)."""
    earned = {part: 0.0 for part in PARTS}
    for test in result["tests"]:
        earned[test["tags"][0]] += test["score"]
    return earned


def _tests_of(result: dict, part: str) -> list[dict]:
    return [t for t in result["tests"] if t["tags"] == [part]]


def _failures(result: dict, part: str) -> str:
    return "; ".join(f"{t['name']} -> {t['output']}" for t in _tests_of(result, part) if t["status"] != "passed")


def assert_full_marks(result: dict, parts) -> None:
    earned = part_points(result)
    for part in parts:
        assert not _failures(result, part) and earned[part] == pytest.approx(
            course_config.AUTOGRADED_POINTS[part], abs=1e-3), \
            f"{part} should keep all {course_config.AUTOGRADED_POINTS[part]} points, got {earned[part]}: " \
            f"{_failures(result, part)}"


def assert_loses(result: dict, loses: dict[str, float], elsewhere=PARTS) -> None:
    """Each part of ``loses`` lost exactly that share of its points, and says why; the other parts of
    ``elsewhere`` keep full marks."""
    earned = part_points(result)
    for part, share in loses.items():
        points = course_config.AUTOGRADED_POINTS[part]
        assert _failures(result, part) and points - earned[part] == pytest.approx(share * points, abs=1e-3), \
            f"{part} should lose {share * points:g} of {points} points, lost {points - earned[part]:g}: " \
            f"{_failures(result, part)}"
    assert_full_marks(result, [part for part in elsewhere if part not in loses])


def assert_notes(result: dict, notes) -> None:
    problems = result["extra_data"]["problems"]
    for note in notes:
        assert sum(note in problem for problem in problems) == 1, f"expected the note {note!r} once in {problems}"


def _in_bundle(case):
    """The case's test, on the worker that grades its bundle (and a strict xfail where the suites miss it)."""
    bundle = _BUNDLE_OF[case.id]
    marks = [pytest.mark.xdist_group("corpus-" + "+".join(c.id for c in bundle))]
    if getattr(case, "gap", None):
        marks.append(pytest.mark.xfail(strict=True, reason=case.gap))
    return pytest.param(case, id=case.id, marks=marks)


def graded_bundle(case, tmp_path_factory, labels_csv, labels) -> tuple[dict, tuple]:
    """results.json of the bundle ``case`` is graded in (graded once per worker), and the bundle."""
    bundle = _BUNDLE_OF[case.id]
    key = tuple(c.id for c in bundle)
    if key not in _graded_bundles:
        root = tmp_path_factory.mktemp("bundle")
        _graded_bundles[key] = grade(corpus.build_bundle(bundle, root / "submission", labels_csv), root, labels)
    return _graded_bundles[key], bundle


def test_bundles_hold_every_case_once_and_one_case_per_notebook():
    for cases, grouped in ((MUTANTS, MUTANT_BUNDLES), (VARIANTS, VARIANT_BUNDLES)):
        assert sorted(c.id for bundle in grouped for c in bundle) == sorted(c.id for c in cases)
        assert all(len({c.notebook for c in bundle}) == len(bundle) for bundle in grouped)
    assert len(MUTANT_BUNDLES) < len(MUTANTS) and len(VARIANT_BUNDLES) < len(VARIANTS)


def test_corpus_ids_are_unique_and_every_suite_part_has_mutants():
    ids = [case.id for case in (*MUTANTS, *VARIANTS, *MISNAMED)]
    assert len(ids) == len(set(ids))
    assert len(MUTANTS) >= 29 and len(VARIANTS) >= 16 and len(MISNAMED) >= 5
    assert set().union(*(m.loses for m in MUTANTS)) == set(SUITE_PARTS)
    assert {v.notebook for v in VARIANTS} == set(NOTEBOOK_PARTS)


def test_every_case_applies_and_stays_valid_python(tmp_path):
    """Fast (no grading): every ``old`` text is still in the reference notebooks, and every mutated or extended
    notebook still parses, so the graded cases test the suites rather than the parser."""
    originals = {key: corpus.read_notebook(key) for key in NOTEBOOK_PARTS}
    for case in (*MUTANTS, *VARIANTS):
        nb = corpus.read_notebook(case.notebook)
        case.apply(nb)
        assert nb != originals[case.notebook], case.id
        path = tmp_path / f"{case.id}.ipynb"
        nbformat.write(nb, str(path))
        assert notebook_defs.extract(path).problems == [], case.id


def test_source_notebooks_get_every_autograded_point(tmp_path, labels_csv, labels):
    result = grade(build_submission(tmp_path / "source", predictions=labels_csv), tmp_path, labels)
    assert_full_marks(result, PARTS)
    assert result["score"] == pytest.approx(sum(course_config.AUTOGRADED_POINTS.values()), abs=0.01)
    assert result["extra_data"]["problems"] == []
    timings = result["extra_data"]["timings"]   # the profile `grade -v` and the benchmark print
    assert {"student: torch + kit imports", "student: exports", "judge: program loading",
            "judge: checks"} <= set(timings)
    assert 0 < timings["student: exports"] < timings[profile.TOTAL] == pytest.approx(result["execution_time"], abs=0.01)


@pytest.mark.parametrize("variant", [_in_bundle(v) for v in VARIANTS])
def test_valid_variant_gets_full_marks(variant, tmp_path_factory, labels_csv, labels):
    result, _ = graded_bundle(variant, tmp_path_factory, labels_csv, labels)
    assert_full_marks(result, PARTS)
    assert_notes(result, variant.notes)
    extra = result["extra_data"]
    assert extra["status"] == "ok" and extra["needs_manual_grading"] == {} and extra["staff_message"] is None, \
        "judged on its programs, none refused (every call in the judge's closed op set) or unlike the live model"


@pytest.mark.parametrize("mutant", [_in_bundle(m) for m in MUTANTS])
def test_mutant_loses_what_the_rubric_decides_exactly_where_it_is_wrong(mutant, tmp_path_factory, labels_csv, labels):
    result, bundle = graded_bundle(mutant, tmp_path_factory, labels_csv, labels)
    touched = {part for case in bundle if case is not mutant for part in case.loses}   # their own tests' business
    assert_loses(result, mutant.loses, elsewhere=[part for part in PARTS if part not in touched])
    extra = result["extra_data"]
    assert extra["needs_manual_grading"] == {} and extra["staff_message"] is None, \
        "judged on its programs, none refused (every call in the judge's closed op set) or unlike the live model"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in MISNAMED])
def test_misnamed_files_are_graded_with_a_note_or_named(case, tmp_path, labels_csv, labels):
    result = grade(build_case(case, tmp_path / "submission", labels_csv), tmp_path, labels)
    assert_loses(result, case.loses)
    assert_notes(result, case.notes)


def test_code_that_cannot_be_exported_scores_zero_and_needs_manual_grading(tmp_path, labels_csv, labels):
    """No verdict from the student's process: the part scores 0 automatically and a TA grades it by hand; the
    feedback names the construct and where it is."""
    appended = {}

    def edit(key, nb):
        corpus.add_unexportable_simplenn(key, nb)
        if key == "simplenn":
            appended["code cell"] = sum(cell.cell_type == "code" for cell in nb.cells)   # counted from 1
    result = grade(build_submission(tmp_path / "submission", predictions=labels_csv, edit=edit), tmp_path, labels)
    assert_loses(result, {"simplenn": 1})
    extra = result["extra_data"]
    assert extra["status"] == "needs manual grading" and list(extra["needs_manual_grading"]) == ["simplenn"]
    assert "control flow on a tensor's values" in extra["needs_manual_grading"]["simplenn"]
    assert extra["staff_message"].startswith("needs manual grading: simplenn: torch.export cannot capture")
    (total,) = [t for t in _tests_of(result, "simplenn") if t["name"] == "simplenn: part total"]
    assert total["output"].startswith("needs manual grading: a TA will grade this part by hand, since torch.export "
                                      "cannot capture SimpleNN.forward: control flow on a tensor's values")
    assert f"code cell {appended['code cell']}: `if x.abs()" in total["output"]
    feedback = (tmp_path / "out" / "feedback.md").read_text(encoding="utf-8")
    assert "a TA will grade this part by hand" in feedback


def test_release_stubs_get_nothing_and_say_not_implemented(tmp_path, labels_csv, labels):
    result = grade(build_submission(tmp_path / "release", folder=RELEASE_DIR, predictions=labels_csv), tmp_path, labels)
    earned = part_points(result)
    assert {part: earned[part] for part in SUITE_PARTS} == {part: 0.0 for part in SUITE_PARTS}
    for part in SUITE_PARTS:
        tests = _tests_of(result, part)
        assert tests and all(t["status"] == "failed" for t in tests)
        vague = [f"{t['name']} -> {t['output']}" for t in tests if "not implemented" not in t["output"].lower()]
        assert not vague, f"a stub's failure should say 'not implemented': {vague}"
    assert_full_marks(result, ["predictions"])


def test_hostile_notebook_still_grades_its_definitions(tmp_path, labels_csv, labels):
    marker = tmp_path / "top-level-code-ran"

    def edit(key, nb):
        if key == "simplenn":
            corpus.add_hostile_cells(nb, marker)
    submission = build_submission(tmp_path / "hostile", predictions=labels_csv, edit=edit)
    grade(submission, tmp_path, labels)
    result = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert_full_marks(result, PARTS)
    assert not marker.exists()
    syntax = [p for p in result["extra_data"]["problems"]
              if p.startswith(course_config.NOTEBOOKS["simplenn"]) and "cell skipped" in p]
    assert len(syntax) == 2, result["extra_data"]["problems"]  # the broken cell is there twice
    assert all(f"Note: {p}" in result["output"] for p in syntax)


def test_missing_notebook_scores_zero_in_its_parts_only(tmp_path, labels_csv, labels):
    missing = "simplenn_dev"
    name = course_config.NOTEBOOKS[missing]
    result = grade(build_submission(tmp_path / "partial", predictions=labels_csv, omit=[missing]), tmp_path, labels)
    earned = part_points(result)
    for part in NOTEBOOK_PARTS[missing]:
        assert earned[part] == 0.0
        assert all(f"{name} was not submitted" in t["output"] for t in _tests_of(result, part))
    assert_full_marks(result, [part for part in PARTS if part not in NOTEBOOK_PARTS[missing]])
    assert f"{name} is missing: its parts score 0" in result["extra_data"]["problems"]


@pytest.mark.parametrize("case", ["missing", "invalid"])
def test_bad_predictions_score_zero_with_a_message(case, tmp_path, labels_csv, labels):
    predictions = None
    if case == "invalid":
        predictions = tmp_path / "bad.csv"
        rows = labels_csv.read_text(encoding="utf-8").splitlines()
        predictions.write_text("\n".join(rows[:-1] + ["oops,3"]) + "\n", encoding="utf-8")
    result = grade(build_submission(tmp_path / "submission", predictions=predictions), tmp_path, labels)
    (test,) = _tests_of(result, "predictions")
    assert test["score"] == 0.0 and test["status"] == "failed"
    if case == "missing":
        assert test["output"] == f"no {course_config.PREDICTIONS_FILENAME} submitted"
    else:
        expected = grade_file(predictions, labels).message
        assert test["output"] == expected and "\n" not in expected and "line" in expected
    assert_full_marks(result, SUITE_PARTS)
