"""`make release`: regenerate release/hw2 from source/hw2 with nbgrader, then check it for leaks.

    python -m publishing.release

1. writes ``source/hw2/tools/data_source.py``, the students' ``source/hw2/README.md`` and the points of the
   source notebooks' grade cells from ``course_config.py``;
2. runs ``nbgrader generate_assignment hw2 --force`` (configuration in ``nbgrader_config.py``; its
   gradebook database lives in ``build/nbgrader/``, never in the repository);
3. runs the leak check over the result and fails loudly, naming file and line, on any leak.
``release/`` is committed; CI checks that it equals a fresh generation.
"""
from __future__ import annotations

from pathlib import Path

import course_config
from common import cli
from term.nbgrader import run_nbgrader
from publishing import data_source, handout_points, leak_check, student_readme


class ReleaseError(RuntimeError):
    """nbgrader could not generate the release; the message carries its log."""


def generate(course_root: Path = course_config.REPO_ROOT, db_dir: Path | None = None) -> Path:
    """Run nbgrader generate_assignment for the course directory ``course_root``; returns the release folder."""
    course_root = course_root.resolve()
    db_dir = (db_dir or course_root / "build" / "nbgrader").resolve()
    db_dir.mkdir(parents=True, exist_ok=True)
    result = run_nbgrader("generate_assignment", course_config.ASSIGNMENT_ID, "--force", "--log-level=WARN",
                          f"--CourseDirectory.root={course_root}",
                          f"--CourseDirectory.db_url=sqlite:///{db_dir / 'gradebook.db'}")
    if result.returncode != 0:
        raise ReleaseError(f"nbgrader generate_assignment failed (exit {result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
    return course_root / "release" / course_config.ASSIGNMENT_ID


def main(argv: list[str] | None = None) -> int:
    cli.Parser(description=__doc__.splitlines()[0]).parse_args(argv)
    for generated in (data_source.DATA_SOURCE, student_readme.STUDENT_README):
        print(f"{'wrote' if generated.write() else 'unchanged:'} {generated.shown}")
    for notebook in handout_points.write():
        print(f"set the grade cells' points of {notebook}")
    problems = handout_points.mismatches()
    if problems:
        return cli.error(f"{problems[0]}; fix the notebook or course_config.HANDOUT_ITEMS "
                         f"(`python -m publishing.handout_points check` lists all {len(problems)})")
    try:
        release_dir = generate()
    except ReleaseError as problem:
        return cli.error(str(problem))
    files = sorted(p.relative_to(course_config.REPO_ROOT) for p in release_dir.rglob("*") if p.is_file())
    print(f"nbgrader wrote {len(files)} files to {release_dir.relative_to(course_config.REPO_ROOT)}/:")
    for path in files:
        print(f"  {path}")
    return leak_check.main([str(release_dir)])


if __name__ == "__main__":
    cli.run(main)
