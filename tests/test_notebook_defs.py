"""tools.notebook_defs: a notebook's definitions without running the notebook."""
from __future__ import annotations

import nbformat
import pytest

from tools.notebook_defs import extract, load_definitions, strip_ipython


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
    assert len(problems) == 2 and problems[0].startswith("code cell 2 line 1:") and "skipped" in problems[0]


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
