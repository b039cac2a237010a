"""The kit's one command-line convention, used by every command (``python -m autograder``, ``grade_predictions.py``,
``course_data.build``, ``publishing.*``, ``gradescope_package.autograder_zip``, ``solutions.train_resnet20``):

* exit 0 when the job is done (a zero score is a result, not an error);
* exit 1 for a problem on the staff side (a bad argument, a missing labels file, CUDA asked for but absent),
  with exactly one ``error: ...`` line on stderr that names the problem and the fix;
* exit 2 for an invalid submission where a command grades one file (``grade_predictions.py FILE``);
* ``-v`` / ``-q`` set how much staff-side detail the standard ``logging`` prints on stderr (warnings by default).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, NoReturn

EXIT_DONE, EXIT_STAFF_ERROR, EXIT_INVALID_SUBMISSION = 0, 1, 2


class StaffError(Exception):
    """A problem on the staff side (never the student's): the message says what to fix."""


class Parser(argparse.ArgumentParser):
    """argparse with the kit's convention: a usage error is one ``error:`` line and exit 1, and a command
    takes ``-v`` (info; twice: debug) and ``-q`` (errors only) for its log, unless ``log_flags=False`` (a
    command whose ``--verbose`` means something else)."""

    def __init__(self, *args, log_flags: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if log_flags:
            self.add_argument("-v", "--verbose", action="count", default=0,
                              help="log what the command does on stderr (-vv: every detail)")
            self.add_argument("-q", "--quiet", action="store_true", help="log errors only")
        self._log_flags = log_flags

    def error(self, message) -> NoReturn:
        self.exit(EXIT_STAFF_ERROR, f"error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if self._log_flags:
            configure_logging(parsed.verbose, parsed.quiet)
        return parsed


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Log records of the kit's loggers to stderr as ``LEVEL name: message``."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def resolve_device(requested: str) -> str:
    """A ``--device`` choice: 'auto' -> 'cuda' when PyTorch sees a GPU, else 'cpu'; 'cuda' without a GPU is a
    StaffError (the grader and the reference trainer both take it)."""
    import torch

    if requested not in ("auto", "cuda", "cpu"):
        raise StaffError(f"--device must be auto, cuda or cpu, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise StaffError("--device cuda was asked for but PyTorch sees no CUDA GPU here "
                         "(torch.cuda.is_available() is False); use --device auto or cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def error(message: str, code: int = EXIT_STAFF_ERROR) -> int:
    """Print the one ``error:`` line and return the exit status for ``main`` to return."""
    print(f"error: {message}", file=sys.stderr)
    return code


def run(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())``, where a ``StaffError`` escaping ``main`` becomes the one error line and exit 1
    instead of a traceback."""
    try:
        code = main()
    except StaffError as problem:
        code = error(str(problem))
    sys.exit(code)
