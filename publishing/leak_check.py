"""Check a generated release for anything students must not see.

    python -m publishing.leak_check [RELEASE_DIR]     # default: release/hw2; exit 1 on any leak

Every file of the release is scanned for:
  * nbgrader markers (``BEGIN SOLUTION``, ``BEGIN HIDDEN TESTS``, ``BEGIN MARK SCHEME`` and their ends);
  * any line of the reference solutions or hidden tests of ``source/`` (lines of 12+ characters that
    appear only inside those regions, so shared boilerplate such as ``return x`` is not flagged);
  * outputs left in a notebook (they could show solution results);
  * files that must never ship (label files, checkpoints, data, gradebooks) and the label secret.
Each leak is reported as ``path:line: what``.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import course_config
from common import cli

SOURCE_DIR = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID
RELEASE_DIR = course_config.REPO_ROOT / "release" / course_config.ASSIGNMENT_ID

MARKERS = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS|MARK SCHEME)")
REGION = re.compile(r"^\s*#+\s*BEGIN (SOLUTION|HIDDEN TESTS)\s*$(.*?)^\s*#+\s*END \1\s*$", re.M | re.S)
FORBIDDEN_FILES = ("*label*.csv", "*.pth", "*.pt", "*.npy", "*.npz", "*.zip", "*.tar.gz", "*.db",
                   "predictions.csv", "manifest.json", "label_secret*")
MIN_LINE = 12


def _notebook_sources(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


def reference_lines(source_dir: Path = SOURCE_DIR) -> set[str]:
    """Distinctive lines that appear in solution or hidden-test regions of the source notebooks only."""
    secret, shared = set(), set()
    for notebook in sorted(source_dir.glob("*.ipynb")):
        for source in _notebook_sources(notebook):
            inside = {line.strip() for match in REGION.finditer(source) for line in match.group(2).splitlines()}
            outside = {line.strip() for line in REGION.sub("", source).splitlines()}
            secret |= {line for line in inside if len(line) >= MIN_LINE and not MARKERS.search(line)}
            shared |= outside
    return secret - shared


def _secrets() -> list[str]:
    secrets = [course_config.DEMO_SECRET]
    try:
        secrets.append(course_config.label_secret())
    except course_config.ConfigError:
        pass  # no real secret on this machine: nothing more to look for
    return [s for s in secrets if len(s) >= 8]


def _scan_lines(where: str, lines: list[str], reference: set[str], secrets: list[str]) -> list[str]:
    leaks = []
    for number, line in enumerate(lines, start=1):
        if MARKERS.search(line):
            leaks.append(f"{where}:{number}: nbgrader marker left in: {line.strip()[:80]}")
        elif line.strip() in reference:
            leaks.append(f"{where}:{number}: line of the reference solution: {line.strip()[:80]}")
        if any(secret in line for secret in secrets):
            leaks.append(f"{where}:{number}: the label secret")
    return leaks


def scan(release_dir: Path = RELEASE_DIR, source_dir: Path = SOURCE_DIR) -> list[str]:
    """Every leak in ``release_dir``, as 'path:line: what' strings (empty when clean)."""
    reference, secrets = reference_lines(source_dir), _secrets()
    leaks = []
    if not release_dir.is_dir():
        return [f"{release_dir}: no release here; run `make release`"]
    for path in sorted(p for p in release_dir.rglob("*") if p.is_file()):
        shown = str(path.relative_to(release_dir.parent))
        if any(path.match(pattern) for pattern in FORBIDDEN_FILES):
            leaks.append(f"{shown}:0: a file that must never ship")
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for index, cell in enumerate(cells, start=1):
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                leaks += _scan_lines(f"{shown} cell {index}", source.splitlines(), reference, secrets)
                if cell.get("outputs"):
                    leaks.append(f"{shown} cell {index}:0: outputs left in the notebook")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            leaks.append(f"{shown}:0: a binary file in the release")
            continue
        leaks += _scan_lines(shown, text.splitlines(), reference, secrets)
    return leaks


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(description=__doc__.splitlines()[0])
    parser.add_argument("release_dir", nargs="?", type=Path, default=RELEASE_DIR,
                        help="the generated release to scan (default: release/hw2)")
    release_dir = parser.parse_args(argv).release_dir
    leaks = scan(release_dir)
    for leak in leaks:
        print(f"LEAK {leak}", file=sys.stderr)
    if leaks:
        return cli.error(f"{len(leaks)} leak(s) in {release_dir}; fix source/ and regenerate the release")
    print(f"leak check: {release_dir} is clean ({len(reference_lines())} reference lines checked)")
    return 0


if __name__ == "__main__":
    cli.run(main)
