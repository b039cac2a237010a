"""Write (or check) ``source/hw2/tools/data_source.py`` from ``course_config.py``.

``tools/`` ships to students and cannot import ``course_config``; this small generated file carries the
only facts ``tools/dataset.py`` needs: the term and, per course zip, its file name, URL and SHA-256.

    python -m publishing.data_source write   # after editing course_config.py (the release step runs it)
    python -m publishing.data_source check   # exit 1 when the committed file is stale (CI)
"""
from __future__ import annotations


import course_config
from common import cli
from publishing.generated import GeneratedFile

DATA_SOURCE_PATH = course_config.STUDENT_PACKAGE_DIR / "tools" / "data_source.py"


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


DATA_SOURCE = GeneratedFile(DATA_SOURCE_PATH, render, "publishing.data_source")


def main(argv: list[str] | None = None) -> int:
    return DATA_SOURCE.main(argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    cli.run(main)
