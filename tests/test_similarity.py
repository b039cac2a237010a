"""The code-similarity check (``python -m term similarity``): a class with a planted copy is flagged, the
reports are well formed, bad input is one line each and the rest is compared; the release's own code and the
code every correct answer shares are never a match."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder.similarity import fingerprints
from autograder.similarity.compare import compare
from autograder.similarity.units import Unit, split_units
from fixtures import corpus
from tests.conftest import REPO_ROOT

HW2 = course_config.ASSIGNMENT_ID
RESNET = course_config.NOTEBOOKS["resnet"]


def _similarity(submitted: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "term", "similarity", str(submitted), "--out", str(out), *extra],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def _with_cell(code: str):
    def edit(key, nb):
        if key == "resnet":
            nb.cells.append(nbformat.v4.new_code_cell(code))
    return edit


class _WellFormed(HTMLParser):
    """Fails on a closing tag that does not close the innermost open one."""
    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    """Three students who wrote ResNet-20 their own way, one who copied another's and renamed it, one who
    handed in the release untouched, one unreadable notebook, an empty submission, a 30 MB notebook of plots and
    one of code; a reference folder with a public-style file and a file that is not UTF-8."""
    root = tmp_path_factory.mktemp("similarity")
    submitted = root / "submitted"
    variants = [v for v in corpus.VARIANTS if v.notebook == "resnet"][:3]
    for index, variant in enumerate(variants):
        def edit(key, nb, variant=variant):
            if key == variant.notebook:
                nb.cells[:] = [c for c in nb.cells if "class ResNet20" not in c.source
                               and "class BasicBlock" not in c.source]
                variant.apply(nb)
        corpus.build_submission(submitted / f"student{index}" / HW2, edit=edit)
    original = textwrap.dedent(variants[0].code).strip() + "\n"
    renamed = original.replace("BasicBlock", "Blk").replace("planes", "width").replace("shortcut", "skip")
    corpus.build_submission(submitted / "copier" / HW2, edit=lambda key, nb: (
        nb.cells.__setitem__(slice(None), [c for c in nb.cells if "class ResNet20" not in c.source
                                           and "class BasicBlock" not in c.source])
        if key == "resnet" else None) or (_with_cell(renamed)(key, nb)))
    corpus.build_submission(submitted / "untouched" / HW2, folder=corpus.RELEASE_DIR)
    broken = submitted / "broken" / HW2
    corpus.build_submission(broken)
    (broken / RESNET).write_text("{not json", encoding="utf-8")
    (submitted / "empty" / HW2).mkdir(parents=True)
    big_plots = nbformat.v4.new_code_cell("print('plots')", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": "A" * (30 * 2**20)})])   # 30 MB of outputs: the code is still read
    corpus.build_submission(submitted / "plots" / HW2, edit=lambda key, nb: nb.cells.append(big_plots) if key == "resnet" else None)
    corpus.build_submission(submitted / "huge" / HW2, edit=_with_cell("x = '" + "a" * (30 * 2**20) + "'"))   # 30 MB of code
    reference = root / "reference"
    reference.mkdir()
    (reference / "public_resnet.py").write_text(renamed.replace("Blk", "PublicBlock"), encoding="utf-8")
    (reference / "latin1.py").write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))
    out = root / "out"
    result = _similarity(submitted, out, "--reference", str(reference))
    return {"result": result, "out": out, "submitted": submitted}


def test_the_planted_copy_is_flagged_and_nothing_else_on_resnet(small_class):
    result, out = small_class["result"], small_class["out"]
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "similarity.csv", encoding="utf-8")))
    flagged = {(row["a"], row["b"]) for row in rows if row["flagged"] and row["part"] == "ResNet20"}
    students = {pair for pair in flagged if not any(side.startswith("reference: ") for side in pair)}
    assert students == {("student0", "copier")} or students == {("copier", "student0")}, flagged
    assert any("copier" in pair and "reference: reference/public_resnet.py" in pair for pair in flagged), flagged
    assert not any("untouched" in (row["a"], row["b"]) for row in rows if row["flagged"]), \
        "the release's own code is nobody's"


def test_the_reports_are_readable_and_well_formed(small_class):
    out = small_class["out"]
    text = (out / "similarity.md").read_text(encoding="utf-8")
    assert "copier: similar to" in text and "pairs/001.html" in text
    pages = sorted((out / "pairs").glob("*.html"))
    assert pages
    for page in pages:
        checker = _WellFormed()
        checker.feed(page.read_text(encoding="utf-8"))
        assert checker.open == [], f"{page.name}: unclosed {checker.open}"
    assert 'class="match"' in pages[0].read_text(encoding="utf-8")


def test_bad_input_is_one_line_each_and_the_rest_is_compared(small_class):
    text = (small_class["out"] / "similarity.md").read_text(encoding="utf-8")
    assert f"- broken: {RESNET} is not a readable Jupyter notebook" in text
    assert "- reference reference/latin1.py: not UTF-8 text, skipped" in text
    assert "- empty: no code found in the notebooks" in text
    assert f"- huge: {RESNET}: over 1 MB of code, not compared" in text
    assert "- plots" not in text, "a notebook large for its outputs is read like any other"
    assert text.splitlines()[2].startswith("9 students, 1 reference file;"), "the others are still compared"
    rows = list(csv.DictReader(open(small_class["out"] / "similarity.csv", encoding="utf-8")))
    assert any("plots" in (row["a"], row["b"]) for row in rows), "the 30 MB notebook's code was compared"


def test_a_folder_that_does_not_exist_is_one_line(tmp_path):
    result = _similarity(tmp_path / "nowhere", tmp_path / "out")
    assert result.returncode == 1 and result.stderr.strip().startswith("error:"), result.stderr


def test_renaming_comments_and_literals_do_not_change_the_fingerprints():
    source = corpus.read_notebook("resnet").cells
    code = next(c.source for c in source if "class BasicBlock" in c.source)
    code = re.sub(r"^ *### (BEGIN|END) SOLUTION\n", "", code, flags=re.MULTILINE)
    disguised = ("# my own blocks\n\n" + code.replace("planes", "p").replace("BasicBlock", "Unit")
                 .replace("conv1", "first").replace("kernel_size=3", "kernel_size = 3"))
    assert set(fingerprints.of_source(code).lines) == set(fingerprints.of_source(disguised).lines)


def test_a_graded_object_takes_its_helpers_and_the_rest_is_training_code():
    cells = ["import torch\nfrom torch import nn",
             "class Block(nn.Module):\n    pass",
             "class ResNet20(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.b = Block()",
             "def fit(model):\n    return model",
             "history = fit(ResNet20())"]
    units = split_units(cells, ("ResNet20",), RESNET)
    assert "class Block" in units["ResNet20"] and "class ResNet20" in units["ResNet20"]
    assert "def fit" in units[f"training: {RESNET}"] and "import" not in "".join(units.values())


def test_code_most_of_the_class_shares_is_not_a_match():
    shared = "\n".join(f"def shared_{i}(x):\n    y = x * {i} + torch.relu(x) - torch.sigmoid(x)\n    return y" for i in range(8))
    own = ["\n".join(f"def mine_{s}_{i}(a, b, c):\n    return torch.cat([a, b], {i}).sum() / c.mean() ** {s}"
                     for i in range(6)) for s in range(5)]
    units = [Unit(f"s{n}", "training", shared + "\n" + own[n]) for n in range(5)]
    assert not [m for m in compare(units, [], {}) if m.flagged]


def test_staff_see_similar_to_n_in_grade_alls_summary_and_final_grades_flags(small_class, tmp_path):
    from term import final_grades
    from autograder.similarity.report import read_similar_to
    from common.reports import AutogradedRow, autograded_summary

    counts = read_similar_to(small_class["out"])
    assert counts.get("copier") == 2, counts   # student0 and the public file
    row = AutogradedRow("copier", {}, 30.0, "graded")
    assert "| copier | graded |  | similar to 2 |" in autograded_summary([row], [], counts)
    assert "## For staff" not in autograded_summary([row], [], {})
    folder = tmp_path / "autograded" / course_config.SIMILARITY_FOLDER
    folder.mkdir(parents=True)
    (folder / "similar_to.json").write_text('{"copier": 2, "x": true, "y": "3"}')
    similar_to = read_similar_to(folder)
    assert "similar to 2" in final_grades._flags(tmp_path / "course", "copier", None, similar_to)
    assert not [f for f in final_grades._flags(tmp_path / "course", "x", None, similar_to) if f.startswith("similar")]


# ---- calibration: independent solutions are never flagged, disguised copies always are ----------------------------
@pytest.fixture(scope="module")
def calibration():
    from fixtures.similarity_calibration import calibrate
    return calibrate()


def test_no_two_independent_solutions_are_flagged(calibration):
    from fixtures import similarity_cases as cases
    assert sum("ResNet20" in code for code in cases.INDEPENDENT.values()) >= 20
    for part, matches in calibration.independent.items():
        assert matches, f"{part}: independent solutions share nothing at all: the calibration measures nothing"
        flagged = [(m.a.owner, m.b.owner, round(m.score, 2)) for m in matches if m.flagged]
        assert not flagged, f"{part}: independent solutions flagged: {flagged}"
    assert not [m.a.owner for m in calibration.against_public if m.flagged], "an independent solution vs the public file"


def test_every_disguised_copy_is_flagged_and_ranked_above_every_independent_pair(calibration):
    from fixtures.similarity_calibration import rewrites_layers
    checked = 0
    for part, by_disguise in calibration.copies.items():
        highest = calibration.highest_independent(part)
        for disguise, copies in by_disguise.items():
            if part == "SimpleNN" and rewrites_layers(disguise):
                # 15 lines the handout fixes layer by layer: rewritten, they are any student's
                # (docs/instructor-guide.md, "Code similarity")
                continue
            for source, match in enumerate(copies):
                assert bool(match and match.flagged and match.score > highest), \
                    (f"{part}, copy of source {source} disguised as {disguise}: score "
                     f"{match.score if match else 0:.2f}, highest independent pair {highest:.2f}")
                checked += 1
    assert checked >= 10 * 3, checked
    assert calibration.public_copy is not None and calibration.public_copy.flagged, "the copy of the public file"
    assert calibration.public_copy.score > max(m.score for m in calibration.against_public)


def test_the_instructor_guide_shows_the_calibration_as_it_is(calibration):
    from fixtures.similarity_calibration import summary_table
    guide = (REPO_ROOT / "docs" / "instructor-guide.md").read_text(encoding="utf-8")
    for line in summary_table(calibration).splitlines():
        assert line in guide, \
            f"docs/instructor-guide.md's calibration table is out of date (make calibrate-similarity): {line}"
