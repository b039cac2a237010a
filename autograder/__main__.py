"""python -m autograder: grade one submission or a whole class.

    python -m autograder grade SUBMISSION_DIR --out OUT_DIR [--labels LABELS_CSV] [--device auto|cuda|cpu]
    python -m autograder grade-all SUBMITTED_ROOT --out AUTOGRADED_ROOT [--labels ...] [--jobs N] [--device ...]

grade-all ends with the code-similarity check (autograder/similarity/) on its class. The steps of the term
after it (the gradebook import, the check with outside code, final grades) are ``python -m term``.

Both take --sandbox auto|bwrap|subprocess, --part-timeout S and --memory-mb MB (defaults from course_config),
and -v for a log of each grading run (which runs, which part was blamed and why, where a flag came from).
Exit status 0 whenever results were written (a zero score included); 1 for a problem on the staff side
(labels missing or invalid, CUDA or bwrap asked for but absent, a folder that does not exist).
"""
from __future__ import annotations

import logging
from pathlib import Path

import course_config
from common import cli, predictions
from common.cli import resolve_device
from autograder import sandbox
from autograder.grade import GradingError, grade_submission
from autograder.runner import SandboxPolicy
from autograder.sandbox import SandboxUnavailable

log = logging.getLogger("autograder")


def _arguments(argv):
    parser = cli.Parser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("grade", help="grade one submission folder (3 notebooks + predictions.csv)")
    one.add_argument("submission", type=Path)
    many = commands.add_parser("grade-all", help="grade nbgrader's submitted/<student>/hw2/ tree")
    many.add_argument("submission", type=Path, metavar="SUBMITTED_ROOT")
    many.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    many.add_argument("--no-similarity", action="store_true",
                      help="skip the code-similarity check grade-all runs at the end (OUT/similarity/)")
    for sub in (one, many):
        sub.add_argument("--out", type=Path, required=True, help="where results go")
        sub.add_argument("--labels", type=Path, default=None,
                         help="held-out labels CSV (default: course_config.labels_csv_path())")
        sub.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
        sub.add_argument("--sandbox", choices=("auto", "bwrap", "subprocess"), default="auto",
                         help="auto: bubblewrap when it works here, else a plain subprocess (results.json says which)")
        sub.add_argument("--part-timeout", type=float, default=course_config.GRADING_PART_TIMEOUT_S, metavar="S",
                         help="seconds one part's tests may run (default from course_config)")
        sub.add_argument("--memory-mb", type=float, default=course_config.GRADING_MEMORY_MB, metavar="MB",
                         help="resident memory the sandbox may use (default from course_config)")
    return parser.parse_args(argv)


def _device_the_sandbox_reaches(device: str, *, requested: str, uses_bwrap: bool) -> str:
    """'cuda' only if the sandbox's child can use the GPU too: --device auto then grades on the CPU with a
    warning, --device cuda is a staff error. (``uses_bwrap`` has already refused --sandbox bwrap without bwrap.)"""
    problem = sandbox.bwrap_gpu_problem() if device == "cuda" and uses_bwrap else None
    if problem is None:
        return device
    if requested == "cuda":
        raise GradingError(f"--device cuda was asked for but {problem}; use --sandbox subprocess or --device cpu")
    log.warning("%s; grading on the CPU", problem)
    return "cpu"


def main(argv=None) -> int:
    args = _arguments(argv)
    try:
        if not args.submission.is_dir():
            raise GradingError(f"{args.submission} is not a folder")
        labels = predictions.load_labels(args.labels or course_config.labels_csv_path())
        device = resolve_device(args.device)
        policy = SandboxPolicy(kind=args.sandbox, part_timeout_s=args.part_timeout, memory_mb=args.memory_mb)
        device = _device_the_sandbox_reaches(device, requested=args.device, uses_bwrap=policy.uses_bwrap())
    except (cli.StaffError, predictions.LabelsError, SandboxUnavailable) as problem:
        return cli.error(str(problem))
    if args.command == "grade":
        result = grade_submission(args.submission, args.out, labels, device, policy)
        print(result.to_gradescope()["output"])
        print(f"wrote {args.out / 'results.json'} and {args.out / 'feedback.md'}")
        return cli.EXIT_DONE
    from autograder.grade_all import grade_all
    from common.reports import autograded_totals_line

    graded = grade_all(args.submission, args.out, labels, device, args.jobs, policy,
                       similarity=not args.no_similarity)
    print(autograded_totals_line(graded.rows))
    print(f"{len(graded.rows)} students -> {args.out / 'gradebook.csv'}, {args.out / 'summary.md'}, "
          f"{args.out / 'totals_histogram.png'}")
    return cli.EXIT_DONE


if __name__ == "__main__":
    cli.run(main)
