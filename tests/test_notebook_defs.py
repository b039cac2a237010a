"""tools.notebook_defs: a notebook's definitions without running the notebook."""
from __future__ import annotations

import nbformat
import pytest

from tools.notebook_defs import (UnavailableName, extract, is_available, load_definitions, parse_extracted,
                                 run_statements, strip_ipython)


def _notebook(tmp_path, *cells: str, markdown: str | None = None):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    if markdown:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(markdown))
    path = tmp_path / "student.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_keeps_imports_defs_classes_and_literal_constants(tmp_path):
    path = _notebook(tmp_path, "import math\nfrom pathlib import Path as P",
                     "EPOCHS = 30\nSIZES: list = [16, 32, 64]\nNEG = -1.5\ndevice = P('x')",
                     "def area(r):\n    return math.pi * r * r\n\nclass Box:\n    side = EPOCHS\n",
                     markdown="# a title, not code")
    module = load_definitions(path)
    assert module.EPOCHS == 30 and module.SIZES == [16, 32, 64] and module.NEG == -1.5
    assert module.area(1) == pytest.approx(3.14159, rel=1e-5) and module.Box.side == 30
    assert not hasattr(module, "device"), "non-literal assignments are computed, so they are dropped"


def test_top_level_code_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = _notebook(tmp_path,
                     f"open({str(marker)!r}, 'w').write('training ran')",
                     f"for epoch in range(3):\n    open({str(marker)!r}, 'w')",
                     "import sys\nsys.exit(1)",
                     "def ok():\n    return 1")
    assert load_definitions(path).ok() == 1
    assert not marker.exists()


def test_magics_and_shell_lines_are_removed(tmp_path):
    path = _notebook(tmp_path, "%matplotlib inline\n!pip install torch\nfiles = !ls\nimport os",
                     "%%bash\necho this is shell, not python",
                     "%%time\ndef timed():\n    return 'kept'",
                     "def f():\n    %time x = 1\n    return 2",
                     "len?")
    module = load_definitions(path)
    assert module.timed() == "kept" and module.f() == 2
    assert module.__extraction_problems__ == []


def test_unparsable_cells_are_reported_and_skipped(tmp_path):
    path = _notebook(tmp_path, "def good():\n    return 1", "def broken(:\n    pass", "class Also: pass\nx = = 2",
                     "def after():\n    return good() + 1")
    module = load_definitions(path)
    assert module.after() == 2
    problems = module.__extraction_problems__
    assert len(problems) == 2 and problems[0].startswith("code cell 2, line 1:") and "skipped" in problems[0]


def test_a_later_definition_wins(tmp_path):
    path = _notebook(tmp_path, "def model():\n    return 'first try'", "X = 1", "def model():\n    return 'fixed'",
                     "X = 2")
    module = load_definitions(path)
    assert module.model() == "fixed" and module.X == 2


def test_source_is_one_readable_module(tmp_path):
    path = _notebook(tmp_path, "import torch", "print('hi')\nclass Net:\n    pass")
    source = extract(path).source()
    assert "import torch" in source and "class Net" in source and "print" not in source
    compile(source, "extracted.py", "exec")


def test_not_a_notebook_fails_clearly(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json")
    with pytest.raises(ValueError, match="not a readable Jupyter notebook"):
        extract(path)


def test_a_non_python_cell_magic_drops_the_cell():
    assert strip_ipython("%%html\n<b>hi</b>") is None
    assert strip_ipython("%%capture out\nx = 1") == "\nx = 1"


COLAB_CELL = ("from google.colab import drive\ndrive.mount('/content/drive')\n!pip install torchsummary\n"
              "%cd /content/drive/MyDrive/hw2\nimport math\nfrom torchsummary import summary")


def test_an_import_the_environment_lacks_costs_only_what_uses_it(tmp_path):
    path = _notebook(tmp_path, COLAB_CELL,
                     "def area(r):\n    return math.pi * r * r",
                     "def describe(model):\n    return summary(model, (3, 32, 32))")
    module = load_definitions(path)
    assert module.area(1) == pytest.approx(3.14159, rel=1e-5)
    assert module.__extraction_problems__ == [
        "code cell 1, line 1: `from google.colab import drive` skipped: no module named 'google' in the grading "
        "environment",
        "code cell 1, line 6: `from torchsummary import summary` skipped: no module named 'torchsummary' in the "
        "grading environment"]
    with pytest.raises(UnavailableName, match=r"summary is not available: `from torchsummary import summary` "
                                              r"\(student.ipynb, code cell 1, line 6\) was skipped"):
        module.describe(object())
    assert not is_available(module.drive) and not is_available(module.drive.mount)


def test_a_definition_that_fails_costs_only_itself_and_what_needs_it(tmp_path):
    path = _notebook(tmp_path, "import sys", "class Quit:\n    sys.exit(3)",
                     "def default(x=undefined_name):\n    return x",
                     "class Child(Quit):\n    pass",
                     "def fine():\n    return 'loaded'")
    module = load_definitions(path)
    assert module.fine() == "loaded"
    problems = module.__extraction_problems__
    assert problems == [
        "code cell 2, line 1: `class Quit:` skipped: it raised SystemExit(3) (sys.exit / exit())",
        "code cell 3, line 1: `def default(x=undefined_name):` skipped: NameError: name 'undefined_name' is not defined",
        "code cell 4, line 1: `class Child(Quit):` skipped: it needs Quit, which is not available"]
    with pytest.raises(UnavailableName) as error:   # the first failure is named once, not a chain of them
        module.Child()
    assert str(error.value) == ("Child is not available (it needs Quit): `class Quit:` (student.ipynb, code cell 2, "
                                "line 1) was skipped: it raised SystemExit(3) (sys.exit / exit())")


def test_a_failed_redefinition_keeps_the_earlier_one_as_the_kernel_does(tmp_path):
    path = _notebook(tmp_path, "def model():\n    return 'first'", "def model(size=missing):\n    return 'second'")
    module = load_definitions(path)
    assert module.model() == "first"
    assert module.__extraction_problems__[0].endswith("(the earlier model of code cell 1, line 1 is used instead)")


def test_the_extracted_source_round_trips_with_notebook_positions(tmp_path):
    path = _notebook(tmp_path, "import torch\n\n\n@torch.no_grad()\ndef predict(x):\n    return x",
                     "print('dropped')\nEPOCHS = 3\nclass Net:\n    pass")
    extraction = extract(path)
    statements = parse_extracted(extraction.source())
    assert [s.where for s in statements] == [s.where for s in extraction.statements] == [
        "code cell 1, line 1", "code cell 1, line 4", "code cell 2, line 2", "code cell 2, line 3"]
    assert statements[1].first_line() == "def predict(x):"


def test_skipped_statements_are_unavailable_with_the_callers_reason_and_others_run_in_order(tmp_path):
    path = _notebook(tmp_path, "class Spin:\n    pass", "def ok():\n    return 1")
    statements = extract(path).statements
    seen, namespace = [], {}
    problems = run_statements(statements, namespace, "lab.ipynb", skip={"code cell 1, line 1": "it looped"},
                              on_statement=lambda statement: seen.append(statement.where))
    assert problems == [] and seen == ["code cell 2, line 1"] and namespace["ok"]() == 1
    with pytest.raises(UnavailableName, match="it looped"):
        namespace["Spin"]()


def test_a_line_starting_with_percent_inside_an_expression_is_python_not_a_magic(tmp_path):
    """``"%d" \\n % n`` continued inside brackets: the cell parses as it is, so nothing in it is blanked (it was
    read as a line magic, the cell no longer parsed and its definitions were lost)."""
    cell = 'def report(n):\n    print("epoch %d"\n          % n)\n    return n'
    assert strip_ipython(cell) == cell
    path = _notebook(tmp_path, cell)
    assert "report" in {getattr(s.node, "name", None) for s in extract(path).statements}
