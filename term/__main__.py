"""python -m term: the steps of a term after grade-all.

    python -m term import-nbgrader COURSE --results AUTOGRADED_ROOT [--db-url URL]
    python -m term similarity SUBMITTED_ROOT --out DIR [--reference DIR ...] [--jobs N]
    python -m term final-grades COURSE --results AUTOGRADED_ROOT --out DIR [--db-url URL]

import-nbgrader puts the class into nbgrader's gradebook without running a notebook (term/nbgrader_import.py);
similarity compares the class's code, with outside code if given (grade-all already ran it without);
final-grades writes one grade per student after the TAs' hand grading (term/final_grades.py).
Exit status 0 when the job is done; 1 for a problem on the staff side, with one ``error:`` line.
"""
from __future__ import annotations

from pathlib import Path

from common import cli


def _arguments(argv):
    parser = cli.Parser(prog="python -m term", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    into = commands.add_parser("import-nbgrader", help="put graded submissions into nbgrader's gradebook, no execution")
    final = commands.add_parser("final-grades", help="final_grades.csv from the gradebook after hand grading")
    final.add_argument("--out", type=Path, required=True, help="where final_grades.csv and lms_grades.csv go")
    for sub in (into, final):
        sub.add_argument("course", type=Path, metavar="COURSE", help="the nbgrader course directory (has submitted/)")
        sub.add_argument("--results", type=Path, required=True, metavar="AUTOGRADED_ROOT",
                         help="grade-all's --out folder (<student>/hw2/results.json)")
        sub.add_argument("--db-url", default=None, help="nbgrader's gradebook (default sqlite:///COURSE/gradebook.db)")
    similar = commands.add_parser("similarity", help="code similarity across the class and against --reference code")
    similar.add_argument("submission", type=Path, metavar="SUBMITTED_ROOT")
    similar.add_argument("--out", type=Path, required=True, help="where similarity.csv, .md and pairs/ go")
    similar.add_argument("--reference", type=Path, action="append", default=[], metavar="DIR",
                         help="a folder of .py / .ipynb files to compare every student with (repeatable)")
    similar.add_argument("--jobs", type=int, default=1, help="processes reading the notebooks (default 1)")
    return parser.parse_args(argv)


def _similarity(args) -> int:
    from autograder.similarity.check import run

    if not args.submission.is_dir():
        return cli.error(f"{args.submission} is not a folder: give nbgrader's submitted/ folder")
    _, summary = run(args.submission, args.out, args.reference, jobs=max(1, args.jobs))
    print(summary)
    return cli.EXIT_DONE


def _nbgrader_side(args) -> int:
    from common.reports import final_summary
    from term import final_grades, nbgrader_import
    from term.nbgrader import default_db_url

    nbgrader_import.check_course(args.course, args.results)
    db_url = args.db_url or default_db_url(args.course)
    if args.command == "import-nbgrader":
        print(nbgrader_import.import_class(args.course, args.results, db_url).line())
        return cli.EXIT_DONE
    rows = final_grades.write_final_grades(args.course, args.results, args.out, db_url)
    print(final_summary(rows))
    print(f"wrote {args.out / 'final_grades.csv'}, {args.out / 'lms_grades.csv'} and "
          f"{args.out / 'final_grades_histogram.png'}")
    return cli.EXIT_DONE


def main(argv=None) -> int:
    args = _arguments(argv)
    return _similarity(args) if args.command == "similarity" else _nbgrader_side(args)


if __name__ == "__main__":
    cli.run(main)
