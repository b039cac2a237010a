"""The rubric: every check of the hidden suites and what failing it costs, read from the suites' source.

A check is one test function of ``suites/test_<part>.py`` (all its parametrized cases together); its name is
``<part id>: <first line of its docstring>`` and ``@pytest.mark.deduction(share)`` says which share of the
part's points (course_config.AUTOGRADED_POINTS) failing it costs. A part scores its points less the cost of
every failed check, and never less than 0, so what a mistake costs is decided here, check by check, not by
how many tests happen to notice it.

The grading parent reads this file's answer, never the child's report: a report may only say which checks
passed, and one that names a check this rubric does not have, or leaves one out, is a forgery.

    python -m autograder.rubric        # the rubric as a Markdown table (docs/grader-design.md's copy is checked against it)
"""
from __future__ import annotations

import ast
import functools
import operator
from dataclasses import dataclass
from pathlib import Path

import course_config
from autograder.student_side.protocol import check_name

SUITES_DIR = Path(__file__).resolve().parent / "suites"
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class RubricError(ValueError):
    """A hidden suite is not written as the rubric needs (a check without a deduction, two checks of one name)."""


@dataclass(frozen=True)
class Check:
    part: str
    name: str           # "<part>: <docstring's first line>", as the report plugin names it
    deduction: float    # the share of the part's points that failing it costs

    @property
    def cost(self) -> float:
        return course_config.AUTOGRADED_POINTS[self.part] * self.deduction


def _number(node: ast.expr, where: str) -> float:
    """A deduction written as a number or simple arithmetic of numbers (``1 / 6``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_number(node.operand, where)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_number(node.left, where), _number(node.right, where))
    raise RubricError(f"{where}: the deduction must be a number or arithmetic of numbers, got {ast.unparse(node)}")


def _deduction(function: ast.FunctionDef, where: str) -> float | None:
    for decorator in function.decorator_list:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "deduction" and ast.unparse(decorator.func) == "pytest.mark.deduction"):
            if len(decorator.args) != 1 or decorator.keywords:
                raise RubricError(f"{where}: write @pytest.mark.deduction(share) with one argument")
            share = _number(decorator.args[0], where)
            if not 0 <= share <= 1:
                raise RubricError(f"{where}: a deduction is a share of the part between 0 and 1, got {share:g}")
            return share
    return None


def suite_checks(part: str, path: Path) -> list[Check]:
    """The checks of one suite file, in the order they are written (and run)."""
    checks, seen = [], set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
            continue
        where = f"{path.name}::{node.name}"
        share = _deduction(node, where)
        if share is None:
            raise RubricError(f"{where} has no @pytest.mark.deduction(share): say what failing it costs")
        name = check_name(part, ast.get_docstring(node), node.name)
        if name in seen:
            raise RubricError(f"{where}: another check of {part} has the same name {name!r}")
        seen.add(name)
        checks.append(Check(part, name, share))
    return checks


@functools.lru_cache(maxsize=None)
def checks(part: str) -> tuple[Check, ...]:
    """The checks of an autograded part that has a hidden suite."""
    return tuple(suite_checks(part, SUITES_DIR / f"test_{part}.py"))


def score(part: str, failed: set[str]) -> float:
    """The part's points less the cost of every failed check (by name), never below 0."""
    lost = sum(check.deduction for check in checks(part) if check.name in failed)
    return course_config.AUTOGRADED_POINTS[part] * max(0.0, 1.0 - lost)


def markdown_table(parts) -> str:
    """The rubric as a Markdown table: part, check, points a failure costs (at course_config's points)."""
    lines = ["| part | check | a failure costs |", "| --- | --- | --- |"]
    for part in parts:
        for check in checks(part):
            title = check.name.split(": ", 1)[1].replace("|", "\\|")
            bonus = ", bonus" if part in course_config.BONUS_PARTS else ""
            lines.append(f"| {part} ({course_config.AUTOGRADED_POINTS[part]:g}{bonus}) | {title} | {check.cost:.3g} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(course_config.SUITE_PARTS), end="")
