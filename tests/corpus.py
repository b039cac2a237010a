"""The autograder's proving corpus: submissions built from the reference notebooks, with known grades.

* A **mutant** is a realistic student mistake: exact textual replacements in one code cell of one source
  notebook. ``loses`` says, for each part it breaks, the share of that part's points it must cost (the
  rubric's decision, README "What a mistake costs"); every other part keeps full points. Every ``old`` text
  must occur exactly once in its cell, so the corpus fails loudly (``CorpusError``) when the reference
  notebooks change under it instead of silently grading the unmutated solution.
* A **variant** is a different but correct solution: a whole alternative definition added to the notebook
  as a new code cell, last (a later definition wins, as in the kernel and in the extraction) or first (the
  set-up cell of a Colab notebook). It must get full marks in every part; ``notes`` are texts the
  student's feedback must carry, once each (a skipped import, say).
* A **misnamed** case is the reference submission with files saved under other names (what browsers, LMS
  exports and Jupyter's "Duplicate" do): graded with a note, or named in the feedback and not graded.

``build_submission`` writes a submission folder: the (modified) notebooks of a notebook folder, and a
copy of a predictions file. Nothing here runs a notebook or the autograder; tests/test_autograder_corpus.py does.
"""
from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import nbformat

import course_config
from autograder.results import SUITE_PARTS

SOURCE_DIR = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID
RELEASE_DIR = course_config.REPO_ROOT / "release" / course_config.ASSIGNMENT_ID


class CorpusError(AssertionError):
    """The corpus no longer matches the reference notebooks (an ``old`` text or a cell is not found)."""


@dataclass(frozen=True)
class Mutant:
    id: str
    notebook: str                        # key of course_config.NOTEBOOKS
    old: str
    new: str
    loses: Mapping[str, float]           # part -> the share of its points it must cost; other parts keep them all
    why: str
    cell: str | None = None              # text that picks the one code cell to edit; default: the one holding `old`
    also: tuple[tuple[str, str], ...] = ()   # further (old, new) replacements in the same cell
    gap: str | None = None               # the suites miss this mistake today: the test is a strict xfail
    severity: str | None = None          # "defining": a defining feature is missing (costs >= half its part);
                                         # "slip": a cosmetic slip (costs <= 1/8 of its part)

    def __post_init__(self):
        if self.severity not in (None, "defining", "slip"):
            raise CorpusError(f"mutant {self.id}: severity must be 'defining', 'slip' or None")
        unknown = set(self.loses) - set(SUITE_PARTS)
        if unknown or not self.loses or not all(0 < share <= 1 for share in self.loses.values()):
            raise CorpusError(f"mutant {self.id}: loses must map suite parts to shares in (0, 1], got {self.loses}")

    @property
    def edits(self) -> tuple[tuple[str, str], ...]:
        return ((self.old, self.new), *self.also)

    def apply(self, nb) -> None:
        selector = self.cell if self.cell is not None else self.old
        cells = [c for c in nb.cells if c.cell_type == "code" and selector in c.source]
        if len(cells) != 1:
            raise CorpusError(f"mutant {self.id}: {selector!r} picks {len(cells)} code cells of "
                              f"{course_config.NOTEBOOKS[self.notebook]}, expected exactly 1")
        cell = cells[0]
        for old, new in self.edits:
            count = cell.source.count(old)
            if count != 1:
                raise CorpusError(f"mutant {self.id}: {old!r} occurs {count} times in its cell, expected once")
            cell.source = cell.source.replace(old, new)


@dataclass(frozen=True)
class Variant:
    id: str
    notebook: str
    code: str
    why: str
    first: bool = False                  # the new cell goes before every other cell (else after them)
    notes: tuple[str, ...] = ()          # texts the feedback's notes must carry, once each

    def apply(self, nb) -> None:
        cell = nbformat.v4.new_code_cell(textwrap.dedent(self.code).strip() + "\n")
        nb.cells.insert(0, cell) if self.first else nb.cells.append(cell)


@dataclass(frozen=True)
class Misnamed:
    """The reference submission with some files saved as other paths (several paths: several copies)."""
    id: str
    saved_as: Mapping[str, tuple[str, ...]]   # file name in the reference submission -> the paths it is saved as
    loses: Mapping[str, float]                # part -> share lost, as for a mutant (empty: full marks)
    notes: tuple[str, ...]                    # texts the feedback's notes must carry, once each
    why: str


def read_notebook(key: str, folder: Path = SOURCE_DIR):
    return nbformat.read(str(folder / course_config.NOTEBOOKS[key]), as_version=4)


def build_submission(dest: Path, *, folder: Path = SOURCE_DIR, predictions: Path | None = None,
                     edit: Callable[[str, object], None] | None = None, omit: Iterable[str] = (),
                     saved_as: Mapping[str, tuple[str, ...]] | None = None) -> Path:
    """Write every notebook of ``folder`` (``edit(key, nb)`` may change it in place) except those in ``omit``,
    and a copy of ``predictions`` as predictions.csv; ``saved_as`` moves files to other paths. Returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    omit = set(omit)
    for key, name in course_config.NOTEBOOKS.items():
        if key in omit:
            continue
        nb = read_notebook(key, folder)
        if edit is not None:
            edit(key, nb)
        nbformat.write(nb, str(dest / name))
    if predictions is not None:
        shutil.copyfile(predictions, dest / course_config.PREDICTIONS_FILENAME)
    for name, paths in (saved_as or {}).items():
        for path in paths:
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dest / name, dest / path)
        (dest / name).unlink()
    return dest


def build_case(case: Mutant | Variant | Misnamed, dest: Path, predictions: Path) -> Path:
    """The source submission with one mutant, variant or misnamed case applied."""
    if isinstance(case, Misnamed):
        return build_submission(dest, predictions=predictions, saved_as=case.saved_as)

    def edit(key, nb):
        if key == case.notebook:
            case.apply(nb)
    return build_submission(dest, predictions=predictions, edit=edit)


# --------------------------------------------------------------------------------------------------
# Mutants: realistic mistakes, each with the parts it must lose
# --------------------------------------------------------------------------------------------------
_SIMPLENN = "class SimpleNN(nn.Module)"
_BN = "class SimpleNNBN(nn.Module)"
_SWISH = "class Swish(nn.Module)"
_SWISHNET = "class SimpleNNSwish(nn.Module)"
_L1 = "def l1_penalty(model, strength)"
_RESNET = "class ResNet20(nn.Module)"
_L1_SUM = "sum(p.abs().sum() for p in model.parameters() if p.requires_grad)"

MUTANTS = (
    # ---- Lab 1: SimpleNN -------------------------------------------------------------------------
    Mutant("simplenn-conv1-padding", "simplenn", "nn.Conv2d(3, 8, kernel_size=5)",
           "nn.Conv2d(3, 8, kernel_size=5, padding=2)", {"simplenn": 1 / 2}, cell=_SIMPLENN,
           also=(("nn.Linear(16 * 6 * 6, 120)", "nn.Linear(16 * 7 * 7, 120)"),),
           why="'same' padding on conv1, fc1 resized so that it runs (7x7 maps, more parameters)"),
    Mutant("simplenn-one-maxpool", "simplenn", "x = self.pool(F.relu(self.conv2(x)))", "x = F.relu(self.conv2(x))",
           {"simplenn": 1 / 2}, cell=_SIMPLENN,
           also=(("nn.Linear(16 * 6 * 6, 120)", "nn.Linear(16 * 12 * 12, 120)"),),
           why="the second max-pool forgotten, fc1 resized to 16x12x12 so that it runs"),
    Mutant("simplenn-conv2-5x5", "simplenn", "nn.Conv2d(8, 16, kernel_size=3)", "nn.Conv2d(8, 16, kernel_size=5)",
           {"simplenn": 1 / 2}, cell=_SIMPLENN, also=(("nn.Linear(16 * 6 * 6, 120)", "nn.Linear(16 * 5 * 5, 120)"),),
           why="conv2 copied from conv1 with a 5x5 kernel (fc1 resized to 16x5x5)"),
    Mutant("simplenn-fc1-100", "simplenn", "nn.Linear(16 * 6 * 6, 120)", "nn.Linear(16 * 6 * 6, 100)",
           {"simplenn": 1 / 3}, cell=_SIMPLENN, also=(("nn.Linear(120, 84)", "nn.Linear(100, 84)"),),
           why="fc1 with 100 units instead of 120"),
    Mutant("simplenn-no-relu-after-conv1", "simplenn", "x = self.pool(F.relu(self.conv1(x)))",
           "x = self.pool(self.conv1(x))", {"simplenn": 1 / 6}, cell=_SIMPLENN,
           why="the ReLU after conv1 forgotten (negative values reach conv2)"),
    Mutant("simplenn-no-relu-after-conv2", "simplenn", "x = self.pool(F.relu(self.conv2(x)))",
           "x = self.pool(self.conv2(x))", {"simplenn": 1 / 6}, cell=_SIMPLENN,
           why="the ReLU after conv2 forgotten (negative features reach fc1)"),
    Mutant("simplenn-no-relu-after-fc1", "simplenn", "x = F.relu(self.fc1(x))", "x = self.fc1(x)",
           {"simplenn": 1 / 6}, cell=_SIMPLENN,
           why="the ReLU after fc1 forgotten (two Linear layers collapse into one linear map)"),
    Mutant("simplenn-forward-stub-left", "simplenn", "    def forward(self, x):\n",
           "    def forward(self, x):\n        # YOUR CODE HERE\n        raise NotImplementedError()\n",
           {"simplenn": 1}, cell=_SIMPLENN, why="__init__ done but the forward stub still raises NotImplementedError"),
    # ---- Lab 2: SimpleNNBN -----------------------------------------------------------------------
    Mutant("bn-before-conv", "simplenn_dev", "x = self.pool(F.relu(self.bn1(self.conv1(x))))",
           "x = self.pool(F.relu(self.conv1(self.bn1(x))))", {"simplenn_bn": 3 / 4}, cell=_BN,
           also=(("x = self.pool(F.relu(self.bn2(self.conv2(x))))", "x = self.pool(F.relu(self.conv2(self.bn2(x))))"),
                 ("self.bn1 = nn.BatchNorm2d(8)", "self.bn1 = nn.BatchNorm2d(3)"),
                 ("self.bn2 = nn.BatchNorm2d(16)", "self.bn2 = nn.BatchNorm2d(8)")),
           why="BatchNorm applied to each conv's input instead of its output (resized so that it runs)", severity="defining"),
    Mutant("bn-missing-on-conv2", "simplenn_dev", "x = self.pool(F.relu(self.bn2(self.conv2(x))))",
           "x = self.pool(F.relu(self.conv2(x)))", {"simplenn_bn": 3 / 4}, cell=_BN,
           also=(("        self.bn2 = nn.BatchNorm2d(16)\n", ""),),
           why="BatchNorm only after conv1", severity="defining"),
    Mutant("bn-1d", "simplenn_dev", "self.bn1 = nn.BatchNorm2d(8)", "self.bn1 = nn.BatchNorm1d(8)",
           {"simplenn_bn": 1}, cell=_BN, also=(("self.bn2 = nn.BatchNorm2d(16)", "self.bn2 = nn.BatchNorm1d(16)"),),
           why="BatchNorm1d instead of BatchNorm2d after the convolutions"),
    # ---- Lab 2: Swish and SimpleNNSwish ----------------------------------------------------------
    Mutant("swish-is-sigmoid", "simplenn_dev", "return x * torch.sigmoid(x)", "return torch.sigmoid(x)",
           {"swish": 5 / 8}, cell=_SWISH, why="Swish returns sigmoid(x), the factor x forgotten", severity="defining"),
    Mutant("swish-is-relu", "simplenn_dev", "return x * torch.sigmoid(x)", "return F.relu(x)",
           {"swish": 7 / 8}, cell=_SWISH, why="Swish left as a ReLU"),
    Mutant("swish-uses-silu", "simplenn_dev", "return x * torch.sigmoid(x)", "return F.silu(x)",
           {"swish": 1 / 2}, cell=_SWISH, why="F.silu instead of writing Swish by hand (the handout forbids it)", severity="defining"),
    Mutant("swish-in-place", "simplenn_dev", "return x * torch.sigmoid(x)", "return x.mul_(torch.sigmoid(x))",
           {"swish": 3 / 8}, cell=_SWISH, why="Swish multiplies its input in place"),
    Mutant("swishnet-relu-left-in-fc1", "simplenn_dev", "x = self.act(self.fc1(x))", "x = F.relu(self.fc1(x))",
           {"swish": 3 / 8}, cell=_SWISHNET, why="SimpleNNSwish still uses F.relu after fc1"),
    Mutant("swishnet-without-bn", "simplenn_dev", "x = self.pool(self.act(self.bn1(self.conv1(x))))",
           "x = self.pool(self.act(self.conv1(x)))", {"swish": 3 / 8}, cell=_SWISHNET,
           also=(("x = self.pool(self.act(self.bn2(self.conv2(x))))", "x = self.pool(self.act(self.conv2(x)))"),
                 ("        self.bn1 = nn.BatchNorm2d(8)\n", ""), ("        self.bn2 = nn.BatchNorm2d(16)\n", "")),
           why="SimpleNNSwish built from SimpleNN instead of SimpleNNBN (no BatchNorm)"),
    # ---- Lab 2 bonus: l1_penalty -----------------------------------------------------------------
    Mutant("l1-on-data", "simplenn_dev", _L1_SUM,
           "sum(p.data.abs().sum() for p in model.parameters() if p.requires_grad)", {"l1": 1 / 2}, cell=_L1,
           why="the penalty computed on p.data: right value, no gradient", severity="defining"),
    Mutant("l1-squared", "simplenn_dev", _L1_SUM,
           "sum(p.pow(2).sum() for p in model.parameters() if p.requires_grad)", {"l1": 7 / 8}, cell=_L1,
           why="an L2 penalty (sum of squares) instead of L1"),
    Mutant("l1-item", "simplenn_dev", f"return strength * {_L1_SUM}", f"return (strength * {_L1_SUM}).item()",
           {"l1": 3 / 4}, cell=_L1, why="returns a Python float via .item(), so it cannot be backpropagated", severity="defining"),
    Mutant("l1-no-strength", "simplenn_dev", f"return strength * {_L1_SUM}", f"return {_L1_SUM}",
           {"l1": 1}, cell=_L1, why="strength ignored"),
    # ---- Lab 3: ResNet20 -------------------------------------------------------------------------
    Mutant("resnet-no-shortcuts", "resnet", "return F.relu(out + self.shortcut(x))", "return F.relu(out)",
           {"resnet20": 1 / 2}, why="a plain 20-layer net: the blocks never add their shortcut", severity="defining"),
    Mutant("resnet-2-blocks-per-stage", "resnet", "for i in range(3):", "for i in range(2):", {"resnet20": 1 / 2},
           why="2 blocks per stage (ResNet-14)", severity="defining"),
    Mutant("resnet-no-downsampling", "resnet", "blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))",
           "blocks.append(BasicBlock(in_planes, planes, 1))", {"resnet20": 1 / 2},
           why="stride 1 everywhere: the maps stay 32x32 in every stage", severity="defining"),
    Mutant("resnet-widths-16-32-32", "resnet", "((16, 1), (32, 2), (64, 2))", "((16, 1), (32, 2), (32, 2))",
           {"resnet20": 1 / 4}, cell=_RESNET, also=(("nn.Linear(64, num_classes)", "nn.Linear(32, num_classes)"),),
           why="the third stage keeps 32 filters"),
    Mutant("resnet-max-pool", "resnet", "F.adaptive_avg_pool2d(x, 1)", "F.adaptive_max_pool2d(x, 1)",
           {"resnet20": 1 / 16}, why="global max-pool instead of global average pool", severity="slip"),
    Mutant("resnet-blocks-without-bn", "resnet", "out = F.relu(self.bn1(self.conv1(x)))",
           "out = F.relu(self.conv1(x))", {"resnet20": 1 / 2}, cell="class BasicBlock(nn.Module)",
           also=(("out = self.bn2(self.conv2(out))", "out = self.conv2(out)"),
                 ("        self.bn1 = nn.BatchNorm2d(planes)\n", ""), ("        self.bn2 = nn.BatchNorm2d(planes)\n", "")),
           why="no BatchNorm inside the residual blocks", severity="defining"),
    Mutant("resnet-shortcut-only-without-downsampling", "resnet",
           "self.shortcut = PadShortcut(in_planes, planes, stride)", "self.shortcut = None", {"resnet20": 1 / 2},
           also=(("return F.relu(out + self.shortcut(x))",
                  "return F.relu(out if self.shortcut is None else out + self.shortcut(x))"),),
           cell="class BasicBlock(nn.Module)",
           why="the downsampling blocks drop their shortcut instead of padding it", severity="defining"),
    Mutant("resnet-5x5-stem", "resnet", "self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)",
           "self.conv1 = nn.Conv2d(3, 16, kernel_size=5, stride=1, padding=2, bias=False)", {"resnet20": 1 / 8},
           cell=_RESNET, why="a 5x5 stem convolution: a slip that costs only the parameter count", severity="slip"),
    Mutant("resnet-num-classes-ignored", "resnet", "nn.Linear(64, num_classes)", "nn.Linear(64, 10)",
           {"resnet20": 1 / 8}, why="ResNet20(num_classes=...) always has 10 outputs", severity="slip"),
)

# --------------------------------------------------------------------------------------------------
# Valid variants: other correct solutions, each must get full marks
# --------------------------------------------------------------------------------------------------
VARIANTS = (
    Variant("simplenn-sequential-subclass", "simplenn", """
        class SimpleNN(nn.Sequential):
            def __init__(self):
                super().__init__(
                    nn.Conv2d(3, 8, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
                    nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
                    nn.Flatten(),
                    nn.Linear(576, 120), nn.ReLU(),
                    nn.Linear(120, 84), nn.ReLU(),
                    nn.Linear(84, 10),
                )
        """, why="SimpleNN is an nn.Sequential subclass (no forward of its own)"),
    Variant("simplenn-functional-pooling", "simplenn", """
        class SimpleNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.Conv2d(in_channels=3, out_channels=8, kernel_size=(5, 5))
                self.c2 = nn.Conv2d(in_channels=8, out_channels=16, kernel_size=(3, 3))
                self.f1, self.f2, self.f3 = nn.Linear(576, 120), nn.Linear(120, 84), nn.Linear(84, 10)

            def forward(self, x):
                x = F.max_pool2d(torch.relu(self.c1(x)), kernel_size=2, stride=2)
                x = F.max_pool2d(torch.relu(self.c2(x)), 2)
                x = x.view(x.size(0), -1)
                return self.f3(torch.relu(self.f2(torch.relu(self.f1(x)))))
        """, why="functional max-pool and torch.relu, view instead of flatten"),
    Variant("simplenn-separate-pool-and-relu-modules", "simplenn", """
        class SimpleNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.relu1, self.pool1 = nn.Conv2d(3, 8, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2)
                self.conv2, self.relu2, self.pool2 = nn.Conv2d(8, 16, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2)
                self.flatten = nn.Flatten()
                self.fc1, self.relu3 = nn.Linear(16 * 6 * 6, 120), nn.ReLU()
                self.fc2, self.relu4 = nn.Linear(120, 84), nn.ReLU()
                self.out = nn.Linear(84, 10)

            def forward(self, x):
                x = self.pool1(self.relu1(self.conv1(x)))
                x = self.pool2(self.relu2(self.conv2(x)))
                x = self.relu3(self.fc1(self.flatten(x)))
                return self.out(self.relu4(self.fc2(x)))
        """, why="one pooling and one (in-place) ReLU module per use"),
    Variant("simplenn_bn-sequential-conv-without-bias", "simplenn_dev", """
        class SimpleNNBN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(3, 8, 5, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(8, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                )
                self.classifier = nn.Sequential(
                    nn.Flatten(), nn.Linear(576, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
                )

            def forward(self, x):
                return self.classifier(self.features(x))
        """, why="bias=False convolutions before BatchNorm (their bias is redundant): 82,054 parameters"),
    Variant("simplenn_bn-modulelists-odd-names", "simplenn_dev", """
        class SimpleNNBN(nn.Module):
            def __init__(self):
                super().__init__()
                self.convz = nn.ModuleList([nn.Conv2d(3, 8, 5), nn.Conv2d(8, 16, 3)])
                self.whitening = nn.ModuleList([nn.BatchNorm2d(c) for c in (8, 16)])
                self.head = nn.ModuleList([nn.Linear(576, 120), nn.Linear(120, 84), nn.Linear(84, 10)])

            def forward(self, x):
                for conv, norm in zip(self.convz, self.whitening):
                    x = F.max_pool2d(F.relu(norm(conv(x))), 2)
                x = x.flatten(1)
                for i, layer in enumerate(self.head):
                    x = layer(x)
                    if i < len(self.head) - 1:
                        x = F.relu(x)
                return x
        """, why="BatchNorms in a ModuleList under an odd name, registered after both convs"),
    Variant("swish-torch-mul", "simplenn_dev", """
        class Swish(nn.Module):
            def forward(self, x):
                return torch.mul(x, torch.sigmoid(x))
        """, why="torch.mul(x, torch.sigmoid(x))"),
    Variant("swish-sigmoid-method-in-helper", "simplenn_dev", """
        def swish(x):
            return x * x.sigmoid()


        class Swish(nn.Module):
            def __init__(self):
                super().__init__()

            def forward(self, x):
                return swish(x)
        """, why="a helper function using the tensor's .sigmoid() method"),
    Variant("l1-all-parameters-norm", "simplenn_dev", """
        def l1_penalty(model, strength):
            return strength * sum(torch.norm(p, 1) for p in model.parameters())
        """, why="the most common answer: every parameter, frozen or not (no model of the homework has any)"),
    Variant("l1-torch-cat", "simplenn_dev", """
        def l1_penalty(model, strength):
            flat = torch.cat([p.reshape(-1) for p in model.parameters() if p.requires_grad])
            return flat.abs().sum() * strength
        """, why="all trainable parameters concatenated into one vector"),
    Variant("l1-loop-of-norms", "simplenn_dev", """
        def l1_penalty(model, strength):
            total = 0.0
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                total = total + torch.norm(param, p=1)
            return strength * total
        """, why="an accumulating loop of torch.norm(p, 1) over named_parameters"),
    Variant("resnet-option-b-projections", "resnet", """
        class ProjectionBlock(nn.Module):
            def __init__(self, in_planes, planes, stride=1):
                super().__init__()
                self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.shortcut = nn.Sequential()
                if stride != 1 or in_planes != planes:
                    self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                                  nn.BatchNorm2d(planes))

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                return F.relu(out + self.shortcut(x))


        class ResNet20(nn.Module):
            def __init__(self, num_classes=10):
                super().__init__()
                self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(16)
                self.in_planes = 16
                self.layer1 = self._stage(16, 1)
                self.layer2 = self._stage(32, 2)
                self.layer3 = self._stage(64, 2)
                self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
                self.fc = nn.Linear(64, num_classes)

            def _stage(self, planes, stride):
                blocks = []
                for s in [stride, 1, 1]:
                    blocks.append(ProjectionBlock(self.in_planes, planes, s))
                    self.in_planes = planes
                return nn.Sequential(*blocks)

            def forward(self, x):
                x = F.relu(self.bn1(self.conv1(x)))
                x = self.layer3(self.layer2(self.layer1(x)))
                return self.fc(torch.flatten(self.avgpool(x), 1))
        """, why="option-B shortcuts (1x1 conv + BN projections): 272,474 parameters, still ResNet-20"),
    Variant("resnet-renamed-block-sequential-stages", "resnet", """
        class ResidualUnit(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.n1 = nn.BatchNorm2d(cout)
                self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.n2 = nn.BatchNorm2d(cout)
                self.stride, self.extra = stride, cout - cin

            def skip(self, x):
                if self.stride == 1 and self.extra == 0:
                    return x
                x = x[:, :, ::self.stride, ::self.stride]
                return torch.cat([x, x.new_zeros(x.shape[0], self.extra, x.shape[2], x.shape[3])], dim=1)

            def forward(self, x):
                y = F.relu(self.n1(self.c1(x)))
                return F.relu(self.n2(self.c2(y)) + self.skip(x))


        def make_stage(cin, cout, stride, depth=3):
            return nn.Sequential(ResidualUnit(cin, cout, stride), *[ResidualUnit(cout, cout, 1) for _ in range(depth - 1)])


        class ResNet20(nn.Module):
            def __init__(self, num_classes=10):
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
                self.stages = nn.Sequential(make_stage(16, 16, 1), make_stage(16, 32, 2), make_stage(32, 64, 2))
                self.head = nn.Linear(64, num_classes)

            def forward(self, x):
                x = self.stages(F.relu(self.stem(x)))
                return self.head(x.mean(dim=(2, 3)))
        """, why="functional ReLU, a differently named block, nn.Sequential stages, zero channels appended "
                 "at the end by torch.cat, mean over the map as the pool"),
    Variant("resnet-lambda-layer-shortcut", "resnet", """
        def _weights_init(m):
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight)


        class LambdaLayer(nn.Module):
            def __init__(self, lambd):
                super().__init__()
                self.lambd = lambd

            def forward(self, x):
                return self.lambd(x)


        class BasicBlock(nn.Module):
            expansion = 1

            def __init__(self, in_planes, planes, stride=1):
                super().__init__()
                self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.shortcut = nn.Sequential()
                if stride != 1 or in_planes != planes:
                    self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2],
                                                                (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                out += self.shortcut(x)
                return F.relu(out)


        class ResNet20(nn.Module):
            def __init__(self, num_classes=10):
                super().__init__()
                self.in_planes = 16
                self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(16)
                self.layer1 = self._make_layer(BasicBlock, 16, 3, stride=1)
                self.layer2 = self._make_layer(BasicBlock, 32, 3, stride=2)
                self.layer3 = self._make_layer(BasicBlock, 64, 3, stride=2)
                self.linear = nn.Linear(64, num_classes)
                self.apply(_weights_init)

            def _make_layer(self, block, planes, num_blocks, stride):
                layers = []
                for stride in [stride] + [1] * (num_blocks - 1):
                    layers.append(block(self.in_planes, planes, stride))
                    self.in_planes = planes * block.expansion
                return nn.Sequential(*layers)

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.layer3(self.layer2(self.layer1(out)))
                out = F.avg_pool2d(out, out.size()[3])
                out = out.view(out.size(0), -1)
                return self.linear(out)
        """, why="the widespread LambdaLayer option-A implementation (in-place residual add, avg_pool2d)"),
)

_COLAB_SETUP = """
    from google.colab import drive
    drive.mount('/content/drive')
    !pip install torchsummary
    %cd /content/drive/MyDrive/ECE661/hw2
    import sys
    sys.path.append('/content/drive/MyDrive/ECE661/hw2')
    """
_LAB_SERVER_EXTRAS = """
    from torchsummary import summary
    from thop import profile
    import wandb
    import seaborn as sns
    from tqdm.notebook import tqdm as notebook_tqdm


    def count_macs(model):
        macs, params = profile(model, inputs=(torch.randn(1, 3, 32, 32),))
        return macs


    def log_epoch(history):
        wandb.log({key: values[-1] for key, values in history.items() if values})
        sns.lineplot(data=history["val_acc"])
    """


def _skipped(statement: str, module: str) -> str:
    return f"`{statement}` skipped: no module named {module!r} in the grading environment"


VARIANTS += (
    Variant("colab-setup-cell", "simplenn", _COLAB_SETUP, first=True,
            notes=(_skipped("from google.colab import drive", "google"),),
            why="a Colab notebook: Drive mounted, pip and %cd in its first cell; only the import is skipped"),
    Variant("packages-the-grader-lacks", "simplenn_dev", _LAB_SERVER_EXTRAS,
            notes=(_skipped("from torchsummary import summary", "torchsummary"), _skipped("from thop import profile", "thop"),
                   _skipped("import wandb", "wandb"), _skipped("import seaborn as sns", "seaborn")),
            why="torchsummary, thop, wandb and seaborn, used by helpers the suites never call"),
    Variant("resnet-generic-class-with-lambda-shortcut", "resnet", """
        class LambdaLayer(nn.Module):
            def __init__(self, lambd):
                super(LambdaLayer, self).__init__()
                self.lambd = lambd

            def forward(self, x):
                return self.lambd(x)


        class BasicBlock(nn.Module):
            expansion = 1

            def __init__(self, in_planes, planes, stride=1, option='A'):
                super(BasicBlock, self).__init__()
                self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.shortcut = nn.Sequential()
                if stride != 1 or in_planes != planes:
                    self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2],
                                                                (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                out += self.shortcut(x)
                out = F.relu(out)
                return out


        class ResNet(nn.Module):
            def __init__(self, block, num_blocks, num_classes=10):
                super(ResNet, self).__init__()
                self.in_planes = 16
                self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
                self.bn1 = nn.BatchNorm2d(16)
                self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
                self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
                self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
                self.linear = nn.Linear(64, num_classes)

            def _make_layer(self, block, planes, num_blocks, stride):
                strides = [stride] + [1] * (num_blocks - 1)
                layers = []
                for stride in strides:
                    layers.append(block(self.in_planes, planes, stride))
                    self.in_planes = planes * block.expansion
                return nn.Sequential(*layers)

            def forward(self, x):
                out = F.relu(self.bn1(self.conv1(x)))
                out = self.layer1(out)
                out = self.layer2(out)
                out = self.layer3(out)
                out = F.avg_pool2d(out, out.size()[3])
                out = out.view(out.size(0), -1)
                out = self.linear(out)
                return out


        class ResNet20(ResNet):
            def __init__(self, num_classes=10):
                super().__init__(BasicBlock, [3, 3, 3], num_classes=num_classes)
        """, why="a generic ResNet(block, num_blocks) with a lambda option-A shortcut, avg_pool2d over the "
                 "whole map and class ResNet20(ResNet)"),
)

# --------------------------------------------------------------------------------------------------
# Misnamed files: graded with a note when the name differs only by what downloads add, named otherwise
# --------------------------------------------------------------------------------------------------
_LAB3, _LAB2 = course_config.NOTEBOOKS["resnet"], course_config.NOTEBOOKS["simplenn_dev"]
_PREDICTIONS = course_config.PREDICTIONS_FILENAME

MISNAMED = (
    Misnamed("download-suffixes", {_LAB3: ("resnet-cifar10 (1).ipynb",), _PREDICTIONS: ("predictions (1).csv",)},
             loses={}, notes=(f"graded resnet-cifar10 (1).ipynb as {_LAB3}", f"graded predictions (1).csv as {_PREDICTIONS}"),
             why="files downloaded twice by a browser"),
    Misnamed("jupyter-duplicate-and-case", {_LAB2: ("simplenn-cifar10-dev-Copy1.ipynb",), _LAB3: ("ResNet-CIFAR10.ipynb",)},
             loses={}, notes=(f"graded simplenn-cifar10-dev-Copy1.ipynb as {_LAB2}", f"graded ResNet-CIFAR10.ipynb as {_LAB3}"),
             why="Jupyter's Duplicate names a copy -Copy1; a renamed file in capitals"),
    Misnamed("sub-folder", {_LAB3: ("hw2/resnet-cifar10.ipynb",)}, loses={},
             notes=(f"graded hw2/resnet-cifar10.ipynb as {_LAB3} (found in a sub-folder)",),
             why="a zip of the assignment folder"),
    Misnamed("renamed-beyond-recognition", {_LAB3: ("resnet_cifar10_final.ipynb",)}, loses={"resnet20": 1},
             notes=(f"found resnet_cifar10_final.ipynb: rename it to {_LAB3} (it was not graded)",),
             why="a name of the student's own: not guessed, but named in the feedback"),
    Misnamed("two-candidates", {_LAB3: ("resnet-cifar10 (1).ipynb", "resnet-cifar10 (2).ipynb")}, loses={"resnet20": 1},
             notes=(f"found 2 files that could be {_LAB3} (resnet-cifar10 (1).ipynb, resnet-cifar10 (2).ipynb): "
                    "none was graded",),
             why="two downloads and no exact name: never guessed between"),
)

def mistakes_table() -> str:
    """What each mistake of the corpus costs, as the README's Markdown table (at course_config's points)."""
    lines = ["| mistake | part | points lost |", "| --- | --- | --- |"]
    for case in (*MUTANTS, *MISNAMED):
        for part, share in case.loses.items():
            points = share * course_config.AUTOGRADED_POINTS[part]
            lines.append(f"| {case.why} (`{case.id}`) | {part} | {points:.3g} of "
                         f"{course_config.AUTOGRADED_POINTS[part]:g} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# A hostile but gradable notebook: everything the extraction must survive
# --------------------------------------------------------------------------------------------------
HOSTILE_CELLS = (
    "%matplotlib inline\n%load_ext autoreload\n!pip install --upgrade torch\nfiles = !ls -la\n%cd /tmp",
    "%%bash\nrm -rf ~/everything\necho shell cell",
    "def half_written(model:\n    return model",   # a syntax error: reported, the cell skipped
    "for epoch in range(10 ** 9):\n    train_one_epoch(SimpleNN(), train_loader, criterion, optimizer, device)",
    "while True:\n    pass",
    "import sys\nsys.exit(1)",
    "raise SystemExit('stop grading here')",
    "os.system('sleep 1000')\nopen(MARKER, 'w').write('top-level code ran')",
)


def add_hostile_cells(nb, marker: Path) -> None:
    """Hostile cells before and after the code cell defining SimpleNN (its definition must survive);
    ``marker`` is the file the top-level code would write if it ever ran."""
    cells = (*HOSTILE_CELLS, f"MARKER = {str(marker)!r}")
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _SIMPLENN in c.source)
    before = [nbformat.v4.new_code_cell(source) for source in cells]
    after = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.cells[index + 1:index + 1] = after
    nb.cells[index:index] = before


if __name__ == "__main__":
    print(mistakes_table(), end="")
