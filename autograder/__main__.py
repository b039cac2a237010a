"""python -m autograder: grade one submission or a whole class.

    python -m autograder grade SUBMISSION_DIR --out OUT_DIR [--labels LABELS_CSV] [--device auto|cuda|cpu]
    python -m autograder grade-all SUBMITTED_ROOT --out AUTOGRADED_ROOT [--labels ...] [--jobs N] [--device ...]

Exit status 0 whenever results were written (a zero score included); 1 for a problem on the staff side
(labels missing or invalid, CUDA asked for but absent, a folder that does not exist).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import course_config
import grade_predictions
from autograder.grade import GradingError, grade_submission, resolve_device


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(1, f"error: {message} (see --help)\n")


def _arguments(argv):
    parser = _Parser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("grade", help="grade one submission folder (3 notebooks + predictions.csv)")
    one.add_argument("submission", type=Path)
    many = commands.add_parser("grade-all", help="grade nbgrader's submitted/<student>/hw2/ tree")
    many.add_argument("submission", type=Path, metavar="SUBMITTED_ROOT")
    many.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    for sub in (one, many):
        sub.add_argument("--out", type=Path, required=True, help="where results go")
        sub.add_argument("--labels", type=Path, default=None,
                         help="held-out labels CSV (default: course_config.labels_csv_path())")
        sub.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _arguments(argv)
    try:
        if not args.submission.is_dir():
            raise GradingError(f"{args.submission} is not a folder")
        labels = grade_predictions.load_labels(args.labels or course_config.labels_csv_path())
        device = resolve_device(args.device)
    except (GradingError, grade_predictions.LabelsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.command == "grade":
        result = grade_submission(args.submission, args.out, labels, device)
        print(result["output"])
        print(f"wrote {args.out / 'results.json'} and {args.out / 'feedback.md'}")
        return 0
    from autograder.grade_all import grade_all

    rows = grade_all(args.submission, args.out, labels, device, args.jobs)
    print((args.out / "summary.md").read_text(encoding="utf-8").split("\n\n")[1])
    print(f"{len(rows)} students -> {args.out / 'gradebook.csv'}, {args.out / 'summary.md'}, "
          f"{args.out / 'totals_histogram.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
