"""The handout's points in the notebooks: keep the nbgrader grade cells' points equal to
``course_config.HANDOUT_ITEMS``, and print the staff's map from handout items to autograded parts and cells.

Two kinds of grade cells carry points:
  * a manually graded answer cell, ``grade_id`` a key of ``course_config.MANUAL_CELLS``: its points;
  * the test cell of an autograded part, ``grade_id`` ``<part id>_tests``, in the notebook of its handout item:
    the part's points (``predictions_tests`` only holds the points of ``predictions.csv`` for formgrader).
A bonus item's cells carry 0 points in nbgrader (TAs enter its points as extra credit in formgrader), so the
notebooks' maximum is the handout's 100. ``make release`` writes the points before nbgrader generates the
release; a test fails while a notebook disagrees with the config.

    python -m publishing.handout_points write
    python -m publishing.handout_points check   # exit 1, naming each cell, while a notebook disagrees
    python -m publishing.handout_points table   # docs/handout-items.md's table (a test keeps it equal)
"""
from __future__ import annotations

import json
from pathlib import Path

import course_config
from common import cli

SOURCE = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID


def expected_points() -> dict[str, tuple[str, float]]:
    """grade_id -> (NOTEBOOKS key, the points its nbgrader cell must carry), for every grade cell of the kit."""
    points = {cell: (spec["notebook"], course_config.nbgrader_points(spec["points"], spec["bonus"]))
              for cell, spec in course_config.MANUAL_CELLS.items()}
    for part, (grade_id, notebook, bonus) in course_config.PART_TEST_CELLS.items():
        points[grade_id] = (notebook, course_config.nbgrader_points(course_config.AUTOGRADED_POINTS[part], bonus))
    return points


def _grade_cells(notebook: dict):
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            yield meta


def mismatches(source: Path = SOURCE) -> list[str]:
    """One line per grade cell whose points (or place) differ from the config, and per configured cell missing."""
    wanted = expected_points()
    problems, seen = [], set()
    for key, name in course_config.NOTEBOOKS.items():
        for meta in _grade_cells(json.loads((source / name).read_text(encoding="utf-8"))):
            grade_id = meta.get("grade_id")
            seen.add(grade_id)
            if grade_id not in wanted:
                problems.append(f"{name}: grade cell {grade_id!r} is not in course_config.HANDOUT_ITEMS")
            elif wanted[grade_id][0] != key:
                problems.append(f"{name}: grade cell {grade_id!r} belongs in {course_config.NOTEBOOKS[wanted[grade_id][0]]}")
            elif float(meta.get("points", -1)) != wanted[grade_id][1]:
                problems.append(f"{name}: grade cell {grade_id!r} has {meta.get('points')} points, "
                                f"course_config says {wanted[grade_id][1]:g}")
    problems += [f"{course_config.NOTEBOOKS[key]}: no grade cell {grade_id!r}"
                 for grade_id, (key, _) in wanted.items() if grade_id not in seen]
    return problems


def write(source: Path = SOURCE) -> list[str]:
    """Set every grade cell's points from the config; returns the notebooks it changed."""
    wanted, changed = expected_points(), []
    for name in course_config.NOTEBOOKS.values():
        path = source / name
        notebook = json.loads(path.read_text(encoding="utf-8"))
        edits = 0
        for meta in _grade_cells(notebook):
            points = wanted.get(meta.get("grade_id"), (None, None))[1]
            if points is not None and meta.get("points") != points:
                meta["points"] = points
                edits += 1
        if edits:
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            changed.append(name)
    return changed


def markdown_table() -> str:
    """Every handout item: its points, its notebook, the autograded parts and the answer cells that make it up."""
    lines = ["| handout item | points | notebook | autograded parts | answer cells (formgrader) |",
             "| --- | --- | --- | --- | --- |"]
    for item, spec in course_config.HANDOUT_ITEMS.items():
        points = f"{spec['points']:g} bonus" if spec.get("bonus") else f"{spec['points']:g}"
        parts = ", ".join(f"`{part}` {course_config.AUTOGRADED_POINTS[part]:g}" for part in spec.get("parts", ()))
        cells = ", ".join(f"`{cell}` {value:g}" for cell, value in spec.get("cells", {}).items())
        lines.append(f"| {item} | {points} | `{course_config.NOTEBOOKS[spec['notebook']]}` | {parts or '—'} | "
                     f"{cells or '—'} |")
    lines.append(f"| **total** | **{course_config.COURSE_MAX:g} + {course_config.COURSE_BONUS:g} bonus** | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m publishing.handout_points", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "check", "table"))
    action = parser.parse_args(argv).action
    if action == "table":
        print(markdown_table(), end="")
        return cli.EXIT_DONE
    if action == "write":
        changed = write()
        print(f"set the grade cells' points of {', '.join(changed)}" if changed else "grade cells' points unchanged")
    problems = mismatches()   # after a write, only cells the config names and no notebook has (or vice versa)
    for problem in problems:
        cli.error(f"{problem} (course_config.HANDOUT_ITEMS)")
    return cli.EXIT_STAFF_ERROR if problems else cli.EXIT_DONE


if __name__ == "__main__":
    cli.run(main)
