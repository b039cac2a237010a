"""Write (or check) ``source/hw2/tools/data_source.py`` from ``course_config.py``.

``tools/`` ships to students and cannot import ``course_config``; this small generated file carries the
only facts ``tools/dataset.py`` needs: the term and, per course zip, its file name, URL and SHA-256.

    python -m publishing.data_source write   # after editing course_config.py (the release step runs it)
    python -m publishing.data_source check   # exit 1 when the committed file is stale (CI)
"""
from __future__ import annotations

from pathlib import Path

import course_config
from autograder import cli

DATA_SOURCE_PATH = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID / "tools" / "data_source.py"


def render() -> str:
    lines = ["FILES = {"]
    for kind, info in course_config.course_data_files().items():
        lines.append(f"    {kind!r}: {{")
        lines += [f"        {key!r}: {value!r}," for key, value in info.items()]
        lines.append("    },")
    lines.append("}")
    return (
        '"""Where tools.dataset downloads the course data from. Generated from course_config.py by\n'
        '`python -m publishing.data_source write`: do not edit by hand."""\n\n'
        f"TERM = {course_config.TERM!r}\n\n"
        + "\n".join(lines) + "\n"
    )


def is_current(path: Path = DATA_SOURCE_PATH) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == render()


def write(path: Path = DATA_SOURCE_PATH) -> bool:
    """Write the file; returns True when its content changed."""
    if is_current(path):
        return False
    path.write_text(render(), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "check"))
    args = parser.parse_args(argv)
    if args.action == "write":
        print(f"{'wrote' if write() else 'unchanged:'} {DATA_SOURCE_PATH.relative_to(course_config.REPO_ROOT)}")
        return cli.EXIT_DONE
    if is_current():
        return cli.EXIT_DONE
    return cli.error(f"{DATA_SOURCE_PATH.relative_to(course_config.REPO_ROOT)} does not match course_config.py; "
                     "run `python -m publishing.data_source write` and commit it")


if __name__ == "__main__":
    cli.run(main)
