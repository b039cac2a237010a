"""The kit's layout: one package per user path, one registry of parts, no kit code importing the tests.

The slow test here is the promise of the registry: a new autograded part is one entry in
``course_config.AUTOGRADED_PARTS`` plus one suite file, graded end to end in a temporary copy of the kit.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import course_config
from fixtures import corpus

REPO = course_config.REPO_ROOT
# The packages that are kit code (the tests may import them, never the other way round).
KIT_PACKAGES = ("common", "autograder", "term", "course_data", "publishing", "gradescope_package", "demo", "fixtures",
                "solutions")
KIT_SCRIPTS = ("course_config.py", "grade_predictions.py")
STAFF_PACKAGES = ("term", "course_data", "publishing", "gradescope_package", "demo", "fixtures", "solutions", "tests")


def _kit_modules(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in ([REPO / root] if root.endswith(".py") else (REPO / root).rglob("*.py"))
                  if "__pycache__" not in p.parts)


def _imported_top_levels(path: Path) -> set[str]:
    """The top-level names a module imports, wherever the import statement is (relative imports aside)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", _kit_modules(*KIT_PACKAGES, *KIT_SCRIPTS), ids=lambda p: str(p.relative_to(REPO)))
def test_no_kit_module_imports_from_the_tests(path):
    assert "tests" not in _imported_top_levels(path), f"{path.relative_to(REPO)} imports from tests/: move what it " \
                                                      "needs into fixtures/ (shared by the tests and the demo)"


def test_the_autograder_package_is_the_grader_alone():
    """Gradescope's zip holds the whole autograder package: it must need nothing of the staff packages."""
    offenders = {str(path.relative_to(REPO)): sorted(_imported_top_levels(path) & set(STAFF_PACKAGES))
                 for path in _kit_modules("autograder")}
    assert not {path: names for path, names in offenders.items() if names}


# Who may import whom: each unit imports only from the units before it (itself aside), so every arrow points down.
# The student tools (source/hw2/tools, imported as ``tools``) ship to students and import nothing of the kit.
IMPORT_ORDER = ("course_config", "tools", "common", "course_data", "autograder", "grade_predictions", "term",
                "publishing", "gradescope_package", "fixtures", "solutions", "demo", "tests")
_UNIT_PATHS = {"tools": str((course_config.STUDENT_PACKAGE_DIR / "tools").relative_to(REPO)), "course_config": "course_config.py",
               "grade_predictions": "grade_predictions.py"}


def _imports_by_unit() -> dict[str, dict[str, set[str]]]:
    """unit -> {module path: the kit units it imports}"""
    found = {}
    for unit in IMPORT_ORDER:
        root = _UNIT_PATHS.get(unit, unit)
        found[unit] = {str(path.relative_to(REPO)): _imported_top_levels(path) & set(IMPORT_ORDER) - {unit}
                       for path in _kit_modules(root)}
    return found


def test_every_import_points_down_the_kits_order():
    imports = _imports_by_unit()
    upward = {path: sorted(name for name in names if IMPORT_ORDER.index(name) > IMPORT_ORDER.index(unit))
              for unit, modules in imports.items() for path, names in modules.items()}
    assert not {path: names for path, names in upward.items() if names}, \
        f"imports against the order {' < '.join(IMPORT_ORDER)}: move the shared code down (common/) instead"
    assert set(IMPORT_ORDER) - {"tests"} >= set(KIT_PACKAGES) | {Path(s).stem for s in KIT_SCRIPTS}, "a unit is missing"


def test_the_order_check_sees_an_upward_import(tmp_path):
    """The walker must see an import wherever it sits (a function body, a try block)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    try:\n        from publishing import release\n    except ImportError:\n        pass\n")
    assert "publishing" in _imported_top_levels(module)


def test_the_readme_layout_table_matches_the_folders():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+)`", table, flags=re.MULTILINE))
    missing = sorted(path for path in listed if not (REPO / path.rstrip("/")).exists())
    assert not missing, f"README's layout table lists paths that do not exist: {missing}"
    packages = {f"{p.parent.relative_to(REPO).as_posix()}/" for p in REPO.glob("*/__init__.py")}
    packages |= {f"{p.parent.relative_to(REPO).as_posix()}/" for p in (REPO / "autograder").glob("*/__init__.py")}
    unlisted = sorted(packages - listed - {"tests/"})
    assert not unlisted, f"README's layout table does not list the packages {unlisted}"


def _markdown_outside_code(path: Path) -> str:
    return re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped, spaces as '-')."""
    headings = re.findall(r"^#{1,6} (.+)$", _markdown_outside_code(path), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_links_between_the_readme_and_the_docs_resolve():
    """README.md is the door and docs/ the house: every relative link, and its #anchor, must lead somewhere."""
    documents = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(documents) > 1, "docs/ has no Markdown file"
    broken = []
    for document in documents:
        for target in re.findall(r"\]\(([^)\s]+)\)", _markdown_outside_code(document)):
            if re.match(r"[a-z]+:", target):
                continue   # an outside address
            file, _, anchor = target.partition("#")
            linked = (document.parent / file).resolve() if file else document
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
                broken.append(f"{document.relative_to(REPO)}: {target}")
    assert not broken, f"links that lead nowhere: {broken}"
    linked_from_readme = set(re.findall(r"\]\(docs/([^)#]+)", (REPO / "README.md").read_text(encoding="utf-8")))
    assert linked_from_readme >= {p.name for p in documents[1:]}, "a file of docs/ that README.md does not link"


# ---- a new part: one registry entry plus one suite file ----------------------------------------------------

DUMMY_PART = "simplenn_io"
DUMMY_POINTS = 3
DUMMY_SUITE = '''
"""Part simplenn_io (a test's dummy part): SimpleNN's logits depend on its input, judged on its exported program."""
import pytest
import torch

from autograder.suites.conftest import images, program, run


@pytest.mark.deduction(1 / 3)
def test_depends_on_the_input():
    """Different images give different logits"""
    model = program("SimpleNN").eval()
    with torch.no_grad():
        first, second = run(model, images(2)), run(model, images(2))
    assert not torch.allclose(first, second), "expected different logits for different images"


@pytest.mark.deduction(2 / 3)
def test_logits_are_finite():
    """The logits are finite"""
    with torch.no_grad():
        out = run(program("SimpleNN").eval(), images(4))
    assert torch.isfinite(out).all(), "expected finite logits"
'''


def _kit_copy(root: Path) -> Path:
    """What grading needs, copied: the grader, the config, what every command shares (the predictions scorer
    among it) and the student tools/."""
    root.mkdir()
    shutil.copy2(REPO / "course_config.py", root / "course_config.py")
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("autograder", "common"):
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    tools = Path("source") / course_config.ASSIGNMENT_ID / "tools"
    shutil.copytree(REPO / tools, root / tools, ignore=ignore)
    return root


def _add_dummy_part(kit: Path) -> None:
    config = kit / "course_config.py"
    text = config.read_text(encoding="utf-8")
    anchor = '    "predictions": {"points": 12, "notebook": None},'
    assert anchor in text, "course_config.AUTOGRADED_PARTS changed its layout; update this test"
    item_anchor = '    "Lab 3 (a)": {'
    assert item_anchor in text, "course_config.HANDOUT_ITEMS changed its layout; update this test"
    text = text.replace(anchor, f'    "{DUMMY_PART}": {{"points": {DUMMY_POINTS}, "notebook": "simplenn"}},\n' + anchor)
    text = text.replace(item_anchor, f'    "Lab 1 (i)": {{"title": "SimpleNN input/output", "notebook": "simplenn", '
                                     f'"points": {DUMMY_POINTS}, "parts": ("{DUMMY_PART}",)}},\n' + item_anchor)
    config.write_text(text, encoding="utf-8")
    (kit / "autograder" / "suites" / f"test_{DUMMY_PART}.py").write_text(textwrap.dedent(DUMMY_SUITE),
                                                                         encoding="utf-8")


def test_a_new_part_is_one_registry_entry_plus_one_suite_file(tmp_path, course_data):
    labels_csv = course_data[1]
    kit = _kit_copy(tmp_path / "kit")
    _add_dummy_part(kit)
    submission = corpus.build_submission(tmp_path / "submission" / course_config.ASSIGNMENT_ID)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submission), "--out", str(out),
                           "--labels", str(labels_csv), "--device", "cpu"],
                          cwd=kit, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    rows = {test["name"]: test for test in results["tests"]}
    total = rows[f"{DUMMY_PART}: part total"]
    assert (total["score"], total["max_score"], total["tags"]) == (DUMMY_POINTS, DUMMY_POINTS, [DUMMY_PART]), total
    assert {f"{DUMMY_PART}: Different images give different logits", f"{DUMMY_PART}: The logits are finite"} <= set(rows)
    full = {part: float(points) for part, points in course_config.AUTOGRADED_POINTS.items() if part != "predictions"}
    earned = {}
    for test in results["tests"]:
        earned[test["tags"][0]] = earned.get(test["tags"][0], 0.0) + test["score"]
    assert {part: earned[part] for part in full} == full, "the other parts are graded as before"
    assert results["extra_data"]["status"] == "ok" and results["extra_data"]["needs_manual_grading"] == {}
    assert f"| {DUMMY_PART} | {DUMMY_POINTS:g} / {DUMMY_POINTS:g} |" in (out / "feedback.md").read_text(encoding="utf-8")
