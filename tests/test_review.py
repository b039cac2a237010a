"""The staff-only static review (autograder/review.py). Fast: nothing is executed or graded.

Its rule is no false positive on honest code: the reference notebooks, every corpus variant and mistake, and
realistic training cells give no finding. Every construct it flags is found, at the right cell and line, in
a hostile notebook, and every hostile submission of tests/hostile.py whose attack is in a kept statement is
flagged (resource exhaustion is the sandbox's business, not a construct to read).
"""
from __future__ import annotations

import textwrap

import nbformat
import pytest

import course_config
from autograder import review
from autograder.review import Finding, review_modules, review_notebook, review_source
from autograder.submission import notebook_defs
from fixtures import corpus
from tests.hostile import ATTACKS



def _write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(cell).strip("\n")) for cell in cells]
    nbformat.write(nb, str(path))
    return path


def _both(path) -> list[Finding]:
    """The findings of a notebook, read directly and from its extracted module: they must agree."""
    direct = review_notebook(path)
    assert review_source(notebook_defs.extract(path).source(), path.name) == direct
    return direct


@pytest.mark.parametrize("folder", [corpus.SOURCE_DIR, corpus.RELEASE_DIR], ids=["source", "release"])
@pytest.mark.parametrize("key", sorted(course_config.NOTEBOOKS))
def test_reference_notebooks_have_no_finding(folder, key):
    assert _both(folder / course_config.NOTEBOOKS[key]) == []


@pytest.mark.parametrize("case", corpus.VARIANTS + corpus.MUTANTS, ids=lambda case: case.id)
def test_corpus_variants_and_mistakes_have_no_finding(case, tmp_path):
    nb = corpus.read_notebook(case.notebook)
    case.apply(nb)
    path = tmp_path / course_config.NOTEBOOKS[case.notebook]
    nbformat.write(nb, str(path))
    assert [finding.line() for finding in _both(path)] == []


_TRAINING_CELLS = [
    """
    %matplotlib inline
    !nvidia-smi
    import os
    import sys
    import time
    import json
    import copy
    import glob
    import random
    import shutil
    import logging
    import warnings
    from collections import defaultdict
    from pathlib import Path

    import numpy as np
    import matplotlib.pyplot as plt
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.backends.cudnn as cudnn
    import torchvision.transforms as transforms
    from torch.utils.data import DataLoader
    from tqdm import tqdm
    from tools.dataset import CIFAR10
    import gc
    import importlib
    import multiprocessing
    import tools.dataset
    importlib.reload(tools.dataset)
    """,
    """
    CHECKPOINT_DIR = './saved_model'
    EPOCHS = 30
    CHECKPOINT = os.path.join(CHECKPOINT_DIR, 'simplenn.pth')
    """,
    """
    def set_seed(seed=0):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        torch.cuda.manual_seed_all(seed)
        os.environ["PYTHONHASHSEED"] = str(seed)
        cudnn.benchmark = False
        cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        warnings.filterwarnings("ignore")
        plt.rcParams["figure.figsize"] = (10, 4)
        logging.basicConfig(filename="train.log", level=logging.INFO)
    """,
    """
    @torch.no_grad()
    def evaluate(model, loader, criterion, device, eval=True):
        if eval:
            model.eval()
        total_loss, correct, total = 0.0, 0, 0
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total_loss += criterion(outputs, targets).item() * inputs.size(0)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            total += targets.size(0)
        return total_loss / total, correct / total


    def train(model, trainloader, valloader, criterion, optimizer, device, epochs=EPOCHS, scheduler=None,
              save_dir=CHECKPOINT_DIR, name="simplenn"):
        os.makedirs(save_dir, exist_ok=True)
        os.makedirs('saved_model', exist_ok=True)
        history, best_acc = defaultdict(list), 0.0
        for epoch in range(epochs):
            model.train()
            start = time.time()
            running_loss, correct, total = 0.0, 0, 0
            for inputs, targets in tqdm(trainloader, desc=f"epoch {epoch + 1}/{epochs}", leave=False):
                inputs, targets = inputs.to(device), targets.to(device)
                optimizer.zero_grad()
                outputs = model(inputs)
                loss = criterion(outputs, targets)
                loss.backward()
                optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                correct += outputs.argmax(1).eq(targets).sum().item()
                total += targets.size(0)
            if scheduler is not None:
                scheduler.step()
            val_loss, val_acc = evaluate(model, valloader, criterion, device)
            history["train_loss"].append(running_loss / total)
            history["val_acc"].append(val_acc)
            print(f"epoch {epoch + 1}: {val_acc:.4f} ({time.time() - start:.1f}s)", file=sys.stderr)
            sys.stdout.flush()
            if val_acc > best_acc:
                best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
                torch.save(best_state, os.path.join(save_dir, f"{name}.pth"))
                torch.save(model.state_dict(), './saved_model/simplenn.pth')
        with open(os.path.join(save_dir, f"{name}_history.json"), "w") as handle:
            json.dump(history, handle)
        with open(f"{save_dir}/{name}.log", "a") as log:
            log.write(f"best {best_acc}\\n")
        with open("./history.json", "w") as handle:
            json.dump(history, handle)
        with open(save_dir + "/summary.txt", "w") as handle:
            handle.write(str(best_acc))
        shutil.copy(os.path.join(save_dir, f"{name}.pth"), os.path.join(save_dir, "last.pth"))
        return history
    """,
    """
    class Net(nn.Module):
        \"\"\"A configurable CNN.\"\"\"
        expansion = 1
        activations: dict = {"relu": "ReLU"}

        def __init__(self, widths=(8, 16), activation="ReLU"):
            super().__init__()
            for index, width in enumerate(widths):
                setattr(self, f"conv{index}", nn.LazyConv2d(width, 3))
            self.act = getattr(nn, activation)()
            self.head = nn.LazyLinear(10)

        def forward(self, x):
            for index in range(2):
                x = F.max_pool2d(self.act(getattr(self, f"conv{index}")(x)), 2)
            return self.head(torch.flatten(x, 1))
    """,
    """
    def load_checkpoint(model, path='./saved_model/simplenn.pth', device='cpu'):
        if hasattr(model, "module"):
            model = model.module
        model.load_state_dict(torch.load(path, map_location=device))
        return torch.compile(model) if hasattr(torch, "compile") else model


    def latest_checkpoint(folder='saved_model'):
        files = sorted(glob.glob(os.path.join(folder, '*.pth')), key=os.path.getmtime)
        print(os.listdir(folder), os.listdir('./saved_model'), os.getcwd(), Path(folder).exists())
        return files[-1] if files else None


    def plot_history(history, path='./figures/history.png'):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes[0].plot(history["train_loss"], label="train")
        axes[1].plot(history["val_acc"], label="val")
        fig.savefig(path)
        plt.show()


    def sweep(learning_rates, workers=multiprocessing.cpu_count()):
        accuracies = {}
        for lr in learning_rates:
            model = Net()
            accuracies[lr] = lr
            del model
            gc.collect()
            torch.cuda.empty_cache()
        return accuracies


    def build_loader(root='./data', batch_size=128, num_workers=2):
        transform = transforms.Compose([transforms.ToTensor()])
        dataset = CIFAR10(root, mode='train', download=True, transform=transform)
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    """,
    """
    set_seed(0)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = Net().to(device)
    history = train(model, build_loader(), build_loader(), nn.CrossEntropyLoss(), None, device)
    plot_history(history)
    """,
]


def test_ordinary_training_code_has_no_finding(tmp_path):
    path = _write(tmp_path / "simplenn-cifar10.ipynb", _TRAINING_CELLS)
    assert len(notebook_defs.extract(path).statements) > 25
    assert [finding.line() for finding in _both(path)] == []


_HOSTILE_CELLS = [
    """
    import gc
    import inspect
    import sys
    import os
    import builtins
    import importlib
    from importlib import import_module
    import ctypes
    import subprocess
    import socket
    import multiprocessing
    import threading
    import signal
    import atexit
    import pytest
    from _pytest import reports
    import torch
    import shutil
    """,
    """
    def spy():
        frame = sys._getframe(1)
        caller = frame.f_back.f_globals
        names = inspect.currentframe().f_locals
        objects = gc.get_objects()
        module = sys.modules["autograder"]
        secrets = spy.__globals__
        code = spy.__code__
        classes = object.__subclasses__()
        return getattr(spy, "__globals__"), __builtins__
    """,
    """
    class Patcher:
        def patch(self):
            builtins.len = lambda items: 0
            setattr(torch, "allclose", lambda *args: True)
            torch.equal = lambda *args: True
            del torch.manual_seed
            __builtins__["print"] = None

        def run(self, text):
            eval(text)
            exec(text)
            compile(text, "x", "exec")
            __import__("os").system("true")
            os.system("true")
            os.fork()
            os.kill(0, 9)
            subprocess.run(["true"])
    """,
    """
    class Leak:
        import json
        print("hello")
        expansion = 1

        def read(self, name):
            open("/srv/labels.csv").read()
            open("../labels.csv").read()
            open(os.path.join(os.environ["HOME"], name)).read()
            open(f"~/{name}").read()
            shutil.rmtree("/tmp/x")
            os.listdir("..")
            return open("./saved_model/log.txt").read()
    """,
    """
    def background():
        threading.Thread(target=gc.collect).start()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        atexit.register(print)
        ctypes.CDLL(None)
        importlib.import_module("pty")
        multiprocessing.Process(target=print).start()
    """,
    """
    import os as operating_system
    from os import system as run_command
    from sys import _getframe
    gc.collect()


    def aliased():
        operating_system.execv("/bin/sh", ["sh"])
        return run_command, _getframe
    """,
    """
    import traceback
    import torch.nn.functional as F
    from torch._dynamo import is_compiling


    class ExportAware(torch.nn.Module):
        def forward(self, x):
            if torch.compiler.is_exporting() or getattr(torch, "is_exporting", None):
                x = F.relu(x)
            reached = getattr(sys, "mod" + "ules"), traceback.extract_stack()
            setattr(torch, self.name, None)
            return getattr(F, self.activation)(x), getattr(self, self.name)
    """,
]
_HOSTILE_FOUND = {  # (cell, line): constructs
    (1, 1): {"gc"}, (1, 2): {"inspect"}, (1, 6): {"importlib"}, (1, 7): {"importlib"}, (1, 8): {"ctypes"},
    (1, 9): {"subprocess"}, (1, 10): {"socket"}, (1, 11): {"multiprocessing"}, (1, 12): {"threading"},
    (1, 13): {"signal"}, (1, 14): {"atexit"}, (1, 15): {"pytest"}, (1, 16): {"pytest"},
    (2, 2): {"sys._getframe"}, (2, 3): {"frame access (f_back)", "frame access (f_globals)"},
    (2, 4): {"inspect", "frame access (f_locals)"}, (2, 5): {"gc"}, (2, 6): {"sys.modules"}, (2, 7): {"__globals__"},
    (2, 8): {"__code__"}, (2, 9): {"__subclasses__"}, (2, 10): {"__globals__", "__builtins__"},
    (3, 3): {"builtins write"}, (3, 4): {"setattr on a module"}, (3, 5): {"setattr on a module"},
    (3, 6): {"setattr on a module"}, (3, 7): {"__builtins__", "builtins write"}, (3, 10): {"eval"},
    (3, 11): {"exec"}, (3, 12): {"compile"}, (3, 13): {"__import__", "os.system"}, (3, 14): {"os.system"},
    (3, 15): {"os.fork"}, (3, 16): {"os.kill"}, (3, 17): {"subprocess"},
    (4, 2): {"code in a class body"}, (4, 3): {"code in a class body"},
    **{(4, line): {"open outside the notebook's folder"} for line in (7, 8, 9, 10)},
    (4, 11): {"shutil.rmtree outside the notebook's folder"}, (4, 12): {"os.listdir outside the notebook's folder"},
    (5, 2): {"threading"}, (5, 3): {"signal"}, (5, 4): {"atexit"}, (5, 5): {"ctypes"}, (5, 6): {"importlib"},
    (5, 7): {"multiprocessing"},
    (6, 2): {"os.system"}, (6, 3): {"sys._getframe"}, (6, 8): {"os.execv"},   # 6, 4: top-level code is not extracted
    (7, 3): {"torch._dynamo"}, (7, 8): {"torch.compiler", "export detection (is_exporting)"},
    (7, 10): {"getattr on a module with a computed name", "traceback.extract_stack"},
    (7, 11): {"setattr on a module", "setattr on a module with a computed name"},   # 7, 12: F, self are ordinary
}


def test_every_construct_is_found_at_its_cell_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(review, "MAX_FINDINGS", 100)   # the notebook has 65
    findings = _both(_write(tmp_path / "resnet-cifar10.ipynb", _HOSTILE_CELLS))
    assert all(finding.notebook == "resnet-cifar10.ipynb" for finding in findings)
    expected = {(f"code cell {cell}, line {line}", construct)
                for (cell, line), constructs in _HOSTILE_FOUND.items() for construct in constructs}
    assert sorted((f.where, f.construct) for f in findings) == sorted(expected)
    assert findings[0].line() == "resnet-cifar10.ipynb, code cell 1, line 1: gc"


def test_one_finding_per_construct_and_line_and_at_most_fifty_per_notebook(tmp_path):
    lines = "\n".join(["import gc", "def sweep():"] + ["    gc.get_objects(); gc.get_referrers()"] * 60)
    findings = review_notebook(_write(tmp_path / "simplenn-cifar10.ipynb", [lines]))
    assert len(findings) == review.MAX_FINDINGS + 1
    assert len({(f.where, f.construct) for f in findings}) == len(findings)
    assert findings[-1] == Finding("simplenn-cifar10.ipynb", "", "... 11 more")
    assert findings[-1].line() == "simplenn-cifar10.ipynb: ... 11 more"


def test_review_modules_reads_each_extracted_module_present(tmp_path):
    hostile = _write(tmp_path / "resnet-cifar10.ipynb", _HOSTILE_CELLS)
    student = tmp_path / "student"
    student.mkdir()
    (student / "resnet.py").write_text(notebook_defs.extract(hostile).source(), encoding="utf-8")
    (student / "simplenn.py").write_text(
        notebook_defs.extract(corpus.SOURCE_DIR / course_config.NOTEBOOKS["simplenn"]).source(), encoding="utf-8")
    names = {key: course_config.NOTEBOOKS[key] for key in course_config.GRADED_NOTEBOOKS}
    assert review_modules(student, names) == review_notebook(hostile)
    (student / "simplenn.py").write_text("def broken(:\n", encoding="utf-8")
    assert review_modules(student, {"simplenn": "simplenn-cifar10.ipynb"}) == [
        Finding("simplenn-cifar10.ipynb", "", "extracted module could not be reviewed (SyntaxError)")]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.id)
def test_hostile_submissions_are_flagged_in_their_own_cell(attack, tmp_path):
    nb = corpus.read_notebook(attack.notebook, corpus.SOURCE_DIR if attack.base == "source" else corpus.RELEASE_DIR)
    attack.apply(nb, labels=str(tmp_path / "labels.csv"), other=str(tmp_path / "other"), out=str(tmp_path / "out"),
                 sentinel=str(tmp_path / "sentinel"), port=8765)
    path = tmp_path / course_config.NOTEBOOKS[attack.notebook]
    nbformat.write(nb, str(path))
    attack_cell = f"code cell {sum(cell.cell_type == 'code' for cell in nb.cells)}, "
    findings = review_notebook(path)
    if not attack.reviewed:   # an endless loop, a memory bomb, data: nothing to read
        assert findings == []
    else:
        assert findings and all(finding.where.startswith(attack_cell) for finding in findings)


def test_the_command_line_prints_one_line_per_finding(tmp_path, capsys):
    hostile = _write(tmp_path / "resnet-cifar10.ipynb", _HOSTILE_CELLS)
    assert review.main([str(hostile), str(corpus.SOURCE_DIR)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:len(review_notebook(hostile))] == [finding.line() for finding in review_notebook(hostile)]
    assert "simplenn-cifar10.ipynb: nothing to review" in printed


def test_a_statement_too_deep_to_walk_is_a_finding_not_a_crash():
    source = "# code cell 4, line 2\ndef chain():\n    return os" + ".attribute" * 1500 + "\n"
    assert review_source(source, "resnet-cifar10.ipynb") == [
        Finding("resnet-cifar10.ipynb", "code cell 4, line 2", "too deeply nested to review")]
