"""What untrusted input can cost the grading process, and what a student sees of it. Fast: nothing is graded.

The grading process reads notebooks itself, outside any sandbox (autograder/submission.py): a notebook file,
its JSON and its code are read only below course_config's NOTEBOOK_MAX_* limits, so a 30 MB notebook holding
one 15-million-element list literal (which cost 14.7 GB and ~50 s to parse) is answered in a moment. File
names reach the feedback printable and short, and feedback.md stays under results.FEEDBACK_MAX_BYTES.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import course_config
from autograder import results
from autograder.submission import extract_modules, find_submission, notebook_defs
from tests.conftest import REPO_ROOT

LAB1, LAB2, LAB3 = (course_config.NOTEBOOKS[key] for key in ("simplenn", "simplenn_dev", "resnet"))
STUB = "import torch.nn as nn\n\nclass SimpleNN(nn.Module):\n    pass\n"
MB = 1024 * 1024


def _notebook_json(*sources: str, outputs: list | None = None) -> str:
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
             for source in sources]
    if outputs is not None:
        cells[0]["outputs"] = outputs
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _write(folder, name: str, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def _extract(folder, tmp_path):
    """The notes about the notebooks extracted (not those about missing files) and the modules written."""
    submission = find_submission(folder)
    modules = extract_modules(submission, tmp_path / "extracted")
    return [p for p in submission.problems if "is missing" not in p], modules


_MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from autograder.submission import extract_modules, find_submission
    started = time.perf_counter()
    submission = find_submission({folder!r})
    modules = extract_modules(submission, Path({folder!r}) / "extracted")
    seconds = time.perf_counter() - started
    # ru_maxrss keeps the forking process's peak across exec (pytest's, with torch); VmHWM is this program's own
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    peak_kb = int(status["VmHWM"].split()[0]) if "VmHWM" in status else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"seconds": seconds, "problems": submission.problems, "modules": sorted(modules),
                       "peak_mb": peak_kb / 1024}}))
""")


def _measured(folder) -> dict:
    """Find and extract ``folder`` in a fresh process: its seconds, peak resident MB (the process's high-water
    mark, ~20 MB of it the interpreter and course_config), problems and modules."""
    code = _MEASURE.format(repo=str(REPO_ROOT), folder=str(folder))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


# ---- notebooks ---------------------------------------------------------------------------------------------

def test_a_30_mb_list_literal_is_skipped_at_once_and_the_rest_of_the_notebook_graded(tmp_path):
    literal = "X = [" + "0," * 15_000_000 + "]\n"   # ~30 MB: parsing it took 14.7 GB and ~50 s
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(STUB, literal))
    measured = _measured(folder)
    assert measured["seconds"] < 5 and measured["peak_mb"] < 400, measured
    assert measured["modules"] == ["simplenn"]
    assert f"{LAB1}: code cell 2: 29 MB of code, over the 256 KB limit of one cell (keep data out of code " \
           f"cells); cell skipped" in measured["problems"]
    assert "class SimpleNN" in (folder / "extracted" / "simplenn.py").read_text()


def test_a_60_mb_notebook_of_image_outputs_is_still_graded(tmp_path):
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo" * 100_000}}
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(STUB, outputs=[image] * 57))
    assert 55 * MB < (folder / LAB1).stat().st_size < course_config.NOTEBOOK_MAX_BYTES
    measured = _measured(folder)
    assert measured["modules"] == ["simplenn"] and measured["problems"] == [f"{LAB2} is missing: its parts score 0",
                                                                            f"{LAB3} is missing: its parts score 0"]
    assert measured["seconds"] < 5 and measured["peak_mb"] < 500, measured


def test_a_notebook_file_over_the_size_limit_is_refused_unread(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    with open(folder / LAB1, "wb") as handle:   # sparse: 80 MB that take no disk, and are never read
        handle.truncate(80 * MB)
    problems, modules = _extract(folder, tmp_path)
    assert modules == {}
    assert problems[0] == (f"{LAB1} is 80 MB, over the 64 MB limit: clear its outputs "
                                      f"(Kernel > Restart & Clear Output) and submit it again")


def test_the_limits_come_from_course_config(tmp_path, monkeypatch):
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(STUB, "Y = 1\n" * 200))
    monkeypatch.setattr(course_config, "NOTEBOOK_MAX_BYTES", 1000)
    problems, modules = _extract(folder, tmp_path)
    assert modules == {} and problems[0].startswith(f"{LAB1} is 1.")
    assert "over the 1000 bytes limit: clear its outputs" in problems[0]
    monkeypatch.setattr(course_config, "NOTEBOOK_MAX_BYTES", 64 * MB)
    monkeypatch.setattr(course_config, "NOTEBOOK_MAX_CELL_BYTES", 1000)
    problems, modules = _extract(folder, tmp_path)
    assert modules == {"simplenn": tmp_path / "extracted" / "simplenn.py"}
    assert problems[0] == (f"{LAB1}: code cell 2: 1.2 KB of code, over the 1000 bytes limit of one "
                                      f"cell (keep data out of code cells); cell skipped")


def test_too_much_code_in_all_cells_refuses_the_notebook_before_parsing_it(tmp_path):
    cell = "Y = [" + "1," * 100_000 + "]\n"   # 200 KB: under the cell limit, five of them over the total
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(STUB, *[cell] * 6))
    problems, modules = _extract(folder, tmp_path)
    assert modules == {}
    assert problems[0] == (f"{LAB1} holds 1.1 MB of code in its code cells, over the 1 MB limit: keep "
                                      f"data out of code cells (read it from a file) and submit it again")


def test_a_json_bomb_in_the_outputs_is_refused_before_it_is_parsed(tmp_path):
    bomb = {"output_type": "display_data", "metadata": {}, "data": {"application/json": [[]] * 1_100_000}}
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(STUB, outputs=[bomb]))
    problems, modules = _extract(folder, tmp_path)
    assert modules == {}
    assert problems[0] == (f"{LAB1} holds over 1,000,000 JSON objects and lists (its outputs, most "
                                      f"likely), too many to read: clear its outputs (Kernel > Restart & Clear "
                                      f"Output) and submit it again")


def test_deep_json_nesting_is_a_clear_message(tmp_path):
    text = _notebook_json(STUB).replace('"metadata": {}', '"metadata": ' + "[" * 100_000 + "]" * 100_000, 1)
    folder = _write(tmp_path / "sub", LAB1, text)
    problems, modules = _extract(folder, tmp_path)
    assert modules == {}
    assert problems[0] == f"{LAB1} is not a readable Jupyter notebook (its JSON is nested too deeply)"


@pytest.mark.parametrize("document", [{"cells": 3}, {"cells": [{"cell_type": "code", "source": ["x = 1\n", 2]}]}])
def test_malformed_cells_are_a_clear_message_not_a_crash(document, tmp_path):
    folder = _write(tmp_path / "sub", LAB1, json.dumps(document))
    problems, modules = _extract(folder, tmp_path)
    assert modules == {} and problems[0].startswith(f"{LAB1} is not a readable Jupyter notebook (")


def test_deep_nesting_skips_the_cell_or_statement_with_a_clear_message(tmp_path):
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(
        STUB,
        "X = " + "-" * 100_000 + "1\n",                                   # the parser gives up (MemoryError)
        "def total():\n    return " + "+".join(["1"] * 5000) + "\n",        # RecursionError in ast.parse
        "def deep():\n    return a" + ".b" * 800 + "\n\ndef fine():\n    return 2\n"))   # too deep to unparse
    problems, modules = _extract(folder, tmp_path)
    assert problems[:3] == [
        f"{LAB1}: code cell 2: nested too deeply for Python's parser; cell skipped",
        f"{LAB1}: code cell 3: nested too deeply for Python's parser; cell skipped",
        f"{LAB1}: code cell 4, line 1: nested too deeply to read; statement skipped"]
    source = modules["simplenn"].read_text()
    assert "class SimpleNN" in source and "def fine" in source and "def deep" not in source
    compile(source, "simplenn.py", "exec")


def test_the_extraction_problems_of_a_notebook_are_capped(tmp_path):
    folder = _write(tmp_path / "sub", LAB1, _notebook_json(STUB, *["def broken(:\n"] * 100))
    problems, _ = _extract(folder, tmp_path)
    mine = [p for p in problems if p.startswith(f"{LAB1}: ")]
    assert len(mine) == 20 and mine[-1] == f"{LAB1}: and 81 more problems, not shown"


def test_notebook_defs_defaults_match_the_course_limits():
    """Students get tools/notebook_defs.py alone: its defaults are the limits the autograder applies."""
    assert (notebook_defs.MAX_NOTEBOOK_BYTES, notebook_defs.MAX_NOTEBOOK_BRACKETS, notebook_defs.MAX_CODE_BYTES,
            notebook_defs.MAX_CELL_BYTES) == (course_config.NOTEBOOK_MAX_BYTES, course_config.NOTEBOOK_MAX_BRACKETS,
                                              course_config.NOTEBOOK_MAX_CODE_BYTES,
                                              course_config.NOTEBOOK_MAX_CELL_BYTES)


@pytest.mark.parametrize("key, value, named", [
    ("NOTEBOOK_MAX_CELL_BYTES", 2 * MB, "NOTEBOOK_MAX_CELL_BYTES"),
    ("NOTEBOOK_MAX_CODE_BYTES", 0, "NOTEBOOK_MAX_CODE_BYTES"),
    ("NOTEBOOK_MAX_BRACKETS", 1.5, "NOTEBOOK_MAX_BRACKETS"),
])
def test_a_bad_notebook_limit_is_reported_by_its_key(monkeypatch, key, value, named):
    monkeypatch.setattr(course_config, key, value)
    with pytest.raises(course_config.ConfigError) as error:
        course_config.check()
    assert str(error.value).startswith(f"course_config.{named}:")


# ---- file names ---------------------------------------------------------------------------------------------

def test_file_names_reach_the_feedback_printable_and_short(tmp_path):
    folder = tmp_path / "sub"
    _write(folder, LAB1, "{}")
    _write(folder, "simplenn-cifar10-dev\n(1).ipynb", "{}")                 # a near miss with a newline in it
    _write(folder / ("d" * 200) / ("e" * 200), LAB3, "{}")                  # deep: graded, its path shortened
    for i in range(300):
        _write(folder, f"{i:03d}" + "x" * 240 + "\u202e.ipynb", "{}")      # hundreds of long names nobody grades
    submission = find_submission(folder)
    assert set(submission.notebooks) == set(course_config.GRADED_NOTEBOOKS)
    assert submission.problems[0] == f"graded simplenn-cifar10-dev?(1).ipynb as {LAB2}: please name it exactly " \
                                     f"{LAB2} next time"
    assert submission.problems[1].startswith("graded ddd") and "..." in submission.problems[1]
    assert submission.problems[1].endswith(f"eee/{LAB3} as {LAB3} (found in a sub-folder)")
    assert all(p.isprintable() and len(p) < 700 for p in submission.problems), submission.problems
    assert sum(map(len, submission.problems)) < 2000


def test_shown_name_keeps_the_start_and_end_of_a_long_name():
    shown = notebook_defs.shown_name("a" * 300 + "\t.ipynb")
    assert len(shown) == 100 and shown.startswith("aaa") and shown.endswith("a?.ipynb") and "..." in shown
    assert notebook_defs.shown_name("resnet-cifar10 (1).ipynb") == "resnet-cifar10 (1).ipynb"


# ---- feedback.md --------------------------------------------------------------------------------------------

def _results(problems: list[str]) -> results.Results:
    """Every part failed, and these notes."""
    return results.Results(results.suite_tests([], {}), problems=problems)


def test_feedback_is_cut_at_16_kb_at_a_line_boundary_saying_where_everything_is():
    problems = [f"note {i}: " + "é long message \n with a newline " * 300 for i in range(500)]
    feedback = _results(problems).feedback_markdown()
    size = len(feedback.encode("utf-8"))
    assert results.FEEDBACK_MAX_BYTES - 400 < size <= results.FEEDBACK_MAX_BYTES == 16 * 1024
    lines = feedback.splitlines()
    assert lines[-1] == results._FEEDBACK_CUT and "results.json" in lines[-1] and lines[-2] == ""
    notes = [line for line in lines if line.startswith("- note ")]
    assert notes and all(len(line) <= results.MESSAGE_CHARS + 2 for line in notes)
    assert all(line.endswith("...") for line in notes), "every note is one cut line, none cut mid-line by the cap"
    assert "## Notes" in feedback and "| simplenn |" in feedback, "the points come first and are never cut"


def test_short_feedback_is_not_cut_and_a_lone_surrogate_cannot_break_writing_it():
    feedback = _results(["bad name \udcff.ipynb"]).feedback_markdown()
    assert results._FEEDBACK_CUT not in feedback and "- bad name ?.ipynb" in feedback
    feedback.encode("utf-8")
