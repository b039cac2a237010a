"""A file the release carries but nobody edits: rendered from ``course_config.py``, written by ``make release``,
and checked for staleness by a test (and by ``python -m publishing.<module> check``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import course_config
from common import cli


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    render: Callable[[], str]
    command: str   # the module that writes it, as `python -m <command> write`

    @property
    def shown(self) -> Path:
        return self.path.relative_to(course_config.REPO_ROOT)

    def is_current(self) -> bool:
        return self.path.is_file() and self.path.read_text(encoding="utf-8") == self.render()

    def write(self) -> bool:
        """Write the file; returns True when its content changed."""
        if self.is_current():
            return False
        self.path.write_text(self.render(), encoding="utf-8")
        return True

    def main(self, argv: list[str] | None, description: str) -> int:
        """``write`` it, or ``check`` it: exit 1 with one error line while the committed file is stale."""
        parser = cli.Parser(prog=f"python -m {self.command}", description=description)
        parser.add_argument("action", choices=("write", "check"))
        if parser.parse_args(argv).action == "write":
            print(f"{'wrote' if self.write() else 'unchanged:'} {self.shown}")
            return cli.EXIT_DONE
        if self.is_current():
            return cli.EXIT_DONE
        return cli.error(f"{self.shown} does not match course_config.py; run `python -m {self.command} write` "
                         "(or make release) and commit it")
