"""Score students' ``predictions.csv`` against the held-out test labels.

    python grade_predictions.py PRED.csv [--labels LABELS.csv] [--verbose] [--json]
    python grade_predictions.py --batch ROOT [--labels LABELS.csv] [--out gradebook.csv]

One file: prints accuracy, points and per-class accuracy (``--verbose`` adds the confusion matrix,
``--json`` prints one JSON object instead). A tree: ROOT is nbgrader's ``submitted/`` folder
(``ROOT/<student>/hw2/predictions.csv``) or a folder of ``<student>.csv`` files; writes a gradebook CSV,
a points histogram PNG beside it, and prints a summary.

Exit status: 0 scored / gradebook written, 2 invalid submission (one file), 1 instructor-side problem
(labels file missing or invalid, bad arguments).

The format and the scoring are ``common/predictions.py``'s (the library the autograder uses too).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import course_config
from common.cli import EXIT_DONE, EXIT_INVALID_SUBMISSION, Parser, error
from common.predictions import GradeResult, LabelsError, grade_file, grade_tree, load_labels
from common.reports import histogram_path, predictions_summary

def _arguments(argv) -> argparse.Namespace:
    parser = Parser(log_flags=False, description=__doc__.split("\n\n")[0],
                     epilog="exit status: 0 scored (or gradebook written), 2 invalid predictions file, "
                            "1 labels file or argument problem")
    parser.add_argument("predictions", nargs="?", help="one predictions.csv to score")
    parser.add_argument("--batch", metavar="ROOT",
                        help="grade nbgrader's submitted/ tree or a folder of <student>.csv files")
    parser.add_argument("--labels", help="held-out labels CSV (default: course_config.labels_csv_path())")
    parser.add_argument("--out", default="gradebook.csv",
                        help="gradebook CSV for --batch, histogram PNG beside it (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="also print the confusion matrix")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if (args.predictions is None) == (args.batch is None):
        parser.error("give either one predictions file or --batch ROOT")
    if args.batch and (args.json or args.verbose):
        parser.error("--json and --verbose apply to one file, not to --batch")
    return args


def _report(result: GradeResult, verbose: bool) -> str:
    s = result.score
    lines = [f"{result.file}: accuracy {s.accuracy:.2%} ({s.correct}/{s.total}), "
             f"points {s.points:.2f} / {s.max_points:g}", "per-class accuracy (recall per true class):"]
    lines += [f"  class {c}: " + ("no test images" if acc is None else
                                  f"{acc:.2%} ({s.confusion[c, c]}/{s.confusion[c].sum()})")
              for c, acc in enumerate(s.per_class_accuracy)]
    if verbose:
        k = course_config.NUM_CLASSES
        lines.append("confusion matrix (rows: true class, columns: predicted class):")
        lines.append("      " + "".join(f"{c:>7}" for c in range(k)))
        lines += [f"  {c:>3} " + "".join(f"{v:>7}" for v in row) for c, row in enumerate(s.confusion)]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _arguments(argv)
    try:
        labels = load_labels(args.labels or course_config.labels_csv_path())
    except LabelsError as err:
        return error(str(err))
    if args.batch:
        root = Path(args.batch)
        if not root.is_dir():
            return error(f"--batch {root}: not a folder; give nbgrader's submitted/ folder or a folder "
                         "of <student>.csv files")
        try:
            rows = grade_tree(root, labels, args.out)
        except OSError as err:
            return error(f"batch failed: {err}")
        print(predictions_summary(rows))
        print(f"gradebook: {args.out}\nhistogram: {histogram_path(args.out)}")
        return EXIT_DONE
    if not os.path.lexists(args.predictions):
        return error(f"{args.predictions}: no such file")
    result = grade_file(args.predictions, labels)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.score:
        print(_report(result, args.verbose))
    if result.status != "scored":
        return error(f"{result.file}: {result.message}", EXIT_INVALID_SUBMISSION)
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
