"""The homework is the handout's: every graded item of its list (tests/data/handout_items.json, in our words)
is in course_config.HANDOUT_ITEMS with its points, and in the release with its letter, its points and the cells
or autograded parts that make it up; totals are 100 points plus 10 bonus; the answer key covers every cell."""
from __future__ import annotations

import json
import re

import pytest

import course_config
from publishing import handout_points
from tests.conftest import REPO_ROOT

RELEASE = REPO_ROOT / "release" / course_config.ASSIGNMENT_ID
HANDOUT = json.loads((REPO_ROOT / "tests" / "data" / "handout_items.json").read_text(encoding="utf-8"))["items"]
ITEMS = course_config.HANDOUT_ITEMS


def _cells(key):
    return json.loads((RELEASE / course_config.NOTEBOOKS[key]).read_text(encoding="utf-8"))["cells"]


def _grade_cells(key):
    return {cell["metadata"]["nbgrader"]["grade_id"]: cell["metadata"]["nbgrader"]
            for cell in _cells(key) if cell["metadata"].get("nbgrader", {}).get("grade")}


def _label(item: str) -> str:
    """How the notebooks name an item: its letter within the lab ('(b) 1'), or the statement number ('1.4')."""
    return re.sub(r"^Lab \d ", "", item)


def test_the_config_has_the_handouts_items_in_its_order_with_its_points():
    assert list(ITEMS) == [item["id"] for item in HANDOUT]
    for item in HANDOUT:
        spec = ITEMS[item["id"]]
        assert (spec["points"], spec.get("bonus", False)) == (item["points"], item.get("bonus", False)), item["id"]


def test_the_totals_are_100_points_plus_10_bonus_as_in_the_handout():
    assert (course_config.COURSE_MAX, course_config.COURSE_BONUS) == (100, 10)
    sections = {"1.": (30, 0), "Lab 1": (15, 4), "Lab 2": (35, 6), "Lab 3": (20, 0)}
    for prefix, expected in sections.items():
        mine = [spec for item, spec in ITEMS.items() if item.startswith(prefix)]
        regular = sum(spec["points"] for spec in mine if not spec.get("bonus"))
        bonus = sum(spec["points"] for spec in mine if spec.get("bonus"))
        assert (regular, bonus) == expected, prefix


@pytest.mark.parametrize("item", list(ITEMS))
def test_every_item_is_in_the_release_with_its_letter_points_and_cells(item):
    spec = ITEMS[item]
    points = f"bonus: {spec['points']:g} points" if spec.get("bonus") else f"{spec['points']:g} points"
    heading = f"**{_label(item)}** ({points}"
    texts = ["".join(cell["source"]) for cell in _cells(spec["notebook"]) if cell["cell_type"] == "markdown"]
    assert any(heading in text for text in texts), \
        f"{course_config.NOTEBOOKS[spec['notebook']]} has no question headed {heading!r}"
    graded = _grade_cells(spec["notebook"])
    bonus = spec.get("bonus", False)
    for cell, cell_points_ in spec.get("cells", {}).items():
        assert cell in graded, f"no answer cell {cell!r} for {item}"
        assert graded[cell]["points"] == course_config.nbgrader_points(cell_points_, bonus)
    for part in spec.get("parts", ()):
        assert graded[f"{part}_tests"]["points"] == course_config.nbgrader_points(
            course_config.AUTOGRADED_POINTS[part], bonus), f"the test cell of {part} carries the wrong points"


def test_nbgrader_maximum_is_the_handouts_100():
    """Bonus cells carry no points in nbgrader, and Lab 3 (b) has a cell that holds predictions.csv's points, so
    formgrader's maximum is the handout's 100."""
    nbgrader_max = sum(meta["points"] for key in course_config.NOTEBOOKS for meta in _grade_cells(key).values())
    assert nbgrader_max == course_config.COURSE_MAX
    assert course_config.AUTOGRADED_MAX == 27 and course_config.AUTOGRADED_BONUS == 2


def test_the_source_notebooks_grade_cells_agree_with_the_config():
    assert handout_points.mismatches() == [], "run `python -m publishing.handout_points write` (or make release)"


def test_cell_points_names_a_cell_that_disagrees(tmp_path):
    for name in course_config.NOTEBOOKS.values():
        (tmp_path / name).write_bytes((handout_points.SOURCE / name).read_bytes())
    notebook = json.loads((tmp_path / course_config.NOTEBOOKS["simplenn"]).read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "lab1_g":
            cell["metadata"]["nbgrader"]["points"] = 2.0
    (tmp_path / course_config.NOTEBOOKS["simplenn"]).write_text(json.dumps(notebook), encoding="utf-8")
    assert handout_points.mismatches(tmp_path) == [
        f"{course_config.NOTEBOOKS['simplenn']}: grade cell 'lab1_g' has 2.0 points, course_config says 3"]
    assert handout_points.write(tmp_path) == [course_config.NOTEBOOKS["simplenn"]]
    assert handout_points.mismatches(tmp_path) == []


def test_the_answer_key_covers_every_manually_graded_cell():
    key = (REPO_ROOT / "solutions" / "answer_key.md").read_text(encoding="utf-8")
    for cell, spec in course_config.MANUAL_CELLS.items():
        if cell.startswith("tf_"):
            continue
        heading = re.search(rf"^\*\*\([a-h]\)[^`\n]*`{cell}`, (?:bonus, )?(?:up to )?(\d+) points?", key, flags=re.MULTILINE)
        assert heading, f"solutions/answer_key.md has no section headed with the answer cell `{cell}`"
        assert int(heading.group(1)) == spec["points"], f"the answer key gives `{cell}` {heading.group(1)} points"
    section = key.split("## 1. True/false questions", 1)[1].split("\n## ", 1)[0]
    answered = [int(n) for n in re.findall(r"^(\d+)\. \*\*", section, flags=re.MULTILINE)]
    assert answered == list(range(1, course_config.TRUE_FALSE_STATEMENTS + 1)), \
        "the answer key answers statements 1.1 to 1.10, in order"


def test_the_docs_map_every_item_to_its_parts_and_cells():
    doc = (REPO_ROOT / "docs" / "handout-items.md").read_text(encoding="utf-8")
    assert handout_points.markdown_table() in doc, \
        "paste `python -m publishing.handout_points table` into docs/handout-items.md"
