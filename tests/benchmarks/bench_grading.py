"""Benchmark grading: our autograder (`grade-all`, no notebook runs) vs `nbgrader autograde` (runs them).

    .venv/bin/python tests/benchmarks/bench_grading.py [--submissions 24] [--train-per-class 50]
        [--test-per-class 1000] [--nbgrader-timeout 1800] [--skip-nbgrader]

Everything goes to build/bench-grading/ (rebuilt on every run):
1. a synthetic CIFAR-10 archive and the course data built from it (demo secret, labels kept in private/);
2. nbgrader's ``submitted/<student>/hw2/`` tree of N submissions from fixtures/corpus.py (the reference, then
   valid variants and realistic mistakes alternately), each with its own predictions.csv;
3. ``python -m autograder grade-all`` with ``--jobs 1`` and ``--jobs 2``, each into a fresh output folder so
   nothing is skipped as up to date: median seconds per submission (results.json ``execution_time``),
   wall time / count and submissions per minute, and where the time goes: the median seconds of every stage
   over the ``--jobs 1`` run (results.json ``extra_data.timings``, ``autograder/profile.py``);
4. ``nbgrader autograde`` of the reference submission in its own course root (``nbgrader/``: a
   ``nbgrader_config.py`` that loads the repository's and moves the root and gradebook there). It re-executes
   the notebooks as nbgrader runs them: nbgrader sets ``NBGRADER_EXECUTION``, and the notebooks then shrink every
   training run to a smoke test (1 epoch on 256 images; at their default parameters, as in a course without
   that switch, the same run took 350 s on a 2-core VM: Lab 3's 200 epochs of ResNet-20 alone 262 s), so the
   ratio is the least that re-running the notebooks costs against our grader. After ``--nbgrader-timeout``
   seconds the run is stopped (its whole process tree, kernels and DataLoader workers included) and reported
   as "> T s (stopped)"; the ratio is then a lower bound.
The summary table is printed and written to build/bench-grading/summary.json.
Not collected by pytest (the name does not start with test_).
"""
from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import course_config  # noqa: E402
from autograder import profile  # noqa: E402
from common import cli  # noqa: E402
from autograder import sandbox  # noqa: E402
from course_data.build import build  # noqa: E402
from term.nbgrader import run_nbgrader  # noqa: E402
from fixtures import corpus  # noqa: E402
from fixtures.synthetic_cifar10 import write_archive  # noqa: E402

HW2 = course_config.ASSIGNMENT_ID
BENCH = REPO / "build" / "bench-grading"
REFERENCE = "reference"
MARKER = ".bench-grading"   # the only kind of --out folder the benchmark deletes before it starts
ISSUE_GOAL = {"median_s_per_submission": 4.0, "speedup": 100.0}   # issue 21
# What nbgrader must not copy from source/hw2 into its course root (besides the repository's ignore list).
SOURCE_LEFTOVERS = ("data", "saved_model", "predictions.csv", "__pycache__", ".ipynb_checkpoints", "*.pth")


class BenchError(RuntimeError):
    """The benchmark could not run a step; the message says which and why."""


# --------------------------------------------------------------------------------------------------
# Machine, data and submissions
# --------------------------------------------------------------------------------------------------
def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    return {"cpu": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": importlib.metadata.version("torch"),
            "nbgrader": importlib.metadata.version("nbgrader"),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def build_data(root: Path, train_per_class: int, test_per_class: int) -> tuple[Path, Path, dict]:
    """Synthetic archive -> course data; returns (course data folder, labels CSV, manifest)."""
    archive = write_archive(root / "cifar-10-python.tar.gz", train_per_class=train_per_class,
                            test_per_class=test_per_class)
    out, labels = root / "course_data", root / "private" / "test_labels.csv"
    manifest = build(archive, out, labels, course_config.DEMO_SECRET, allow_unofficial=True, base_url=str(out))
    return out, labels, manifest


def cases(count: int) -> list[tuple[str, corpus.Mutant | corpus.Variant | None]]:
    """(student id, case): the reference first, then variants and mutants alternately, cycling if needed."""
    variants, mutants = list(corpus.VARIANTS), list(corpus.MUTANTS)
    mixed = [case for pair in zip(variants, mutants) for case in pair]
    mixed += variants[len(mutants):] + mutants[len(variants):]
    chosen = [(REFERENCE, None)]
    for i in range(count - 1):
        case = mixed[i % len(mixed)]
        kind = "variant" if isinstance(case, corpus.Variant) else "mutant"
        chosen.append((f"s{i + 1:02d}-{kind}-{case.id}", case))
    return chosen


def write_predictions(path: Path, labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> None:
    wrong = rng.random(len(labels)) >= accuracy
    predicted = np.where(wrong, (labels + rng.integers(1, 10, len(labels))) % 10, labels)
    path.write_text("Id,Label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(predicted.tolist())),
                    encoding="utf-8")


def build_submissions(submitted: Path, count: int, labels_csv: Path) -> list[str]:
    """nbgrader's submitted/ tree of ``count`` students; returns their ids."""
    labels = np.loadtxt(labels_csv, delimiter=",", skiprows=1, dtype=np.int64)[:, 1]
    rng = np.random.default_rng(0)
    predictions = submitted.parent / "predictions"
    predictions.mkdir(parents=True, exist_ok=True)
    students = []
    for student, case in tqdm(cases(count), desc="writing submissions", unit="student"):
        csv_path = predictions / f"{student}.csv"
        write_predictions(csv_path, labels, 0.95 if case is None else rng.uniform(0.3, 0.95), rng)
        dest = submitted / student / HW2
        if case is None:
            corpus.build_submission(dest, predictions=csv_path)
        else:
            corpus.build_case(case, dest, csv_path)
        students.append(student)
    return students


# --------------------------------------------------------------------------------------------------
# Our autograder
# --------------------------------------------------------------------------------------------------
def time_grade_all(submitted: Path, out: Path, labels_csv: Path, jobs: int, students: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)   # a fresh folder: nothing is skipped as up to date
    command = [sys.executable, "-m", "autograder", "grade-all", str(submitted), "--out", str(out),
               "--labels", str(labels_csv), "--jobs", str(jobs)]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    run = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True)   # stderr: its tqdm bar
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise BenchError(f"grade-all --jobs {jobs} exited {run.returncode}:\n{run.stdout}")
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        status = {row["student"]: row["status"] for row in csv.DictReader(handle)}
    results = {}
    for student in students:
        path = out / student / HW2 / "results.json"
        if not path.is_file():
            raise BenchError(f"grade-all --jobs {jobs} wrote no {path.relative_to(REPO)}; its gradebook says: "
                             f"{status.get(student, 'no row')}")
        results[student] = json.loads(path.read_text(encoding="utf-8"))
    seconds = [r["execution_time"] for r in results.values()]
    extra = results[REFERENCE].get("extra_data", {})
    return {
        "jobs": jobs, "submissions": len(results), "wall_s": round(wall, 2),
        "median_s_per_submission": round(statistics.median(seconds), 2),
        "max_s_per_submission": round(max(seconds), 2),
        "wall_s_per_submission": round(wall / len(results), 2),
        "submissions_per_min": round(60 * len(results) / wall, 1),
        "device": extra.get("device"), "sandbox": extra.get("sandbox"),
        "reference_score": results[REFERENCE]["score"],
        "scores": {student: r["score"] for student, r in results.items()},
        "stages": profile.table([r.get("extra_data", {}).get("timings", {}) for r in results.values()]),
    }


# --------------------------------------------------------------------------------------------------
# nbgrader autograde
# --------------------------------------------------------------------------------------------------
NBGRADER_CONFIG = '''"""nbgrader's course root for `make bench-grading` (generated): the repository's settings, moved here."""
c = get_config()  # noqa: F821
load_subconfig({main!r})  # noqa: F821 (source/, release/, the ignore list, the stubs)
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db!r}
'''


def prepare_nbgrader_course(course: Path, reference_predictions: Path) -> None:
    """A course root with source/hw2 copied from the repository, the assignment generated, the reference submitted."""
    shutil.rmtree(course, ignore_errors=True)
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(
        main=str(REPO / "nbgrader_config.py"), root=str(course), db=f"sqlite:///{course / 'gradebook.db'}"))
    shutil.copytree(REPO / "source" / HW2, course / "source" / HW2, ignore=shutil.ignore_patterns(*SOURCE_LEFTOVERS))
    result = run_nbgrader("generate_assignment", HW2, "--force", "--log-level=WARN", cwd=course)
    if result.returncode != 0:
        raise BenchError(f"nbgrader generate_assignment failed (exit {result.returncode}):\n"
                         f"{result.stdout}{result.stderr}")
    # nbgrader autograde copies tools/ (every non-notebook file of source/hw2) next to the notebooks itself.
    corpus.build_submission(course / "submitted" / REFERENCE / HW2, predictions=reference_predictions)


def _follow(stream, log_path: Path, started: float, notebooks: list[tuple[str, float]]) -> None:
    """Copy nbgrader's output to its log and note when each notebook starts executing."""
    marker = "] Autograding "   # logged once per notebook, right before its execution
    with open(log_path, "w", encoding="utf-8") as log:
        for line in stream:
            log.write(line)
            log.flush()
            if marker in line:
                notebooks.append((Path(line.split(marker, 1)[1].strip()).name, time.perf_counter() - started))


def nbgrader_score(course: Path) -> list[float]:
    """[score, max score] of the reference submission in nbgrader's gradebook (autograded and manual cells)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(HW2, REFERENCE)
        return [round(submission.score, 2), round(submission.max_score, 2)]


def time_nbgrader(course: Path, course_data: Path, timeout_s: float) -> dict:
    """Wall seconds of `nbgrader autograde hw2 --student reference`, stopped after ``timeout_s``."""
    command = [sys.executable, "-m", "nbgrader", "autograde", HW2, "--student", REFERENCE, "--force",
               # a per-cell limit past the whole-run limit: only our own stop can end a training cell
               f"--ExecutePreprocessor.timeout={int(timeout_s) + 60}"]
    env = dict(os.environ, HW2_DATA_SOURCE=str(course_data / "manifest.json"),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    print(f"\n$ (cd {course.relative_to(REPO)} && nbgrader autograde {HW2} --student {REFERENCE} --force "
          f"{command[-1]})  # log: {(course / 'autograde.log').relative_to(REPO)}", flush=True)
    notebooks: list[tuple[str, float]] = []
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    reader = threading.Thread(target=_follow, args=(proc.stdout, course / "autograde.log", started, notebooks),
                              daemon=True)
    reader.start()
    stopped = False
    try:
        with tqdm(total=int(timeout_s), desc="nbgrader autograde", unit="s",
                  bar_format="{desc}: {n}/{total} s {bar} {postfix}") as bar:
            while proc.poll() is None:
                elapsed = time.perf_counter() - started
                if elapsed >= timeout_s:
                    stopped = True
                    break
                bar.update(min(int(elapsed), bar.total) - bar.n)
                if notebooks:
                    bar.set_postfix_str(notebooks[-1][0], refresh=False)
                time.sleep(1)
    finally:
        if proc.poll() is None:
            killed = sandbox.kill_tree(proc.pid)   # the grader's own: kernels run in their own session
            proc.wait()
            print(f"nbgrader autograde {'stopped after ' + str(int(timeout_s)) + ' s' if stopped else 'interrupted'}: "
                  f"killed {killed} processes (nbgrader, its kernels and their workers)", flush=True)
        reader.join(timeout=10)
    wall = time.perf_counter() - started
    if not stopped and proc.returncode != 0:
        raise BenchError(f"nbgrader autograde exited {proc.returncode}; see {course / 'autograde.log'}")
    ends = [t for _, t in notebooks[1:]] + [None if stopped else wall]
    return {"seconds": round(timeout_s if stopped else wall, 1), "stopped": stopped, "timeout_s": timeout_s,
            "score": None if stopped else nbgrader_score(course),
            "notebooks": [{"notebook": name, "seconds": None if end is None else round(end - start, 1)}
                          for (name, start), end in zip(notebooks, ends)]}


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------
def summarize(info: dict, data: dict, ours: list[dict], nbgrader: dict | None) -> dict:
    jobs1 = ours[0]
    summary = {"machine": info, "data_set": data, "submissions": jobs1["submissions"],
               "ours": ours, "nbgrader_autograde": nbgrader,
               "scores_identical_jobs_1_and_2": all(r["scores"] == jobs1["scores"] for r in ours),
               "goal": ISSUE_GOAL}
    if nbgrader:
        ratio = nbgrader["seconds"] / jobs1["median_s_per_submission"]
        summary["ratio_nbgrader_over_ours"] = {
            "value": round(ratio, 1), "lower_bound": nbgrader["stopped"],
            "basis": "nbgrader autograde seconds for one submission / our median execution_time, --jobs 1",
            "by_wall_time": round(nbgrader["seconds"] / jobs1["wall_s_per_submission"], 1)}
    return summary


def table(summary: dict) -> str:
    m, d = summary["machine"], summary["data_set"]
    rows = [("machine", f"{m['cpu']}, {m['cores']} cores (load {m['load_average_at_start'][0]} at start), "
                        f"torch {m['torch']}, nbgrader {m['nbgrader']}"),
            ("data set (synthetic)", f"{d['train']:,} train / {d['val']:,} val / {d['test']:,} test images"),
            ("submissions", f"{summary['submissions']} (reference + corpus variants and mutants)")]
    for r in summary["ours"]:
        rows.append((f"grade-all --jobs {r['jobs']}",
                     f"median {r['median_s_per_submission']:.2f} s/submission (max {r['max_s_per_submission']:.2f}), "
                     f"wall {r['wall_s']:.1f} s = {r['wall_s_per_submission']:.2f} s/submission, "
                     f"{r['submissions_per_min']:.1f} submissions/min"))
    rows.append(("graded on", f"{summary['ours'][0]['device']}, sandbox {summary['ours'][0]['sandbox']}; "
                              f"scores identical for --jobs 1 and 2: {summary['scores_identical_jobs_1_and_2']}"))
    nb = summary["nbgrader_autograde"]
    if nb is None:
        rows.append(("nbgrader autograde", "skipped (--skip-nbgrader)"))
    else:
        rows.append(("nbgrader autograde", (f"> {nb['seconds']:.0f} s (stopped)" if nb["stopped"] else
                                            f"{nb['seconds']:.1f} s")
                     + " for one submission, the notebooks' smoke settings under nbgrader"
                     + ("" if nb["score"] is None else
                        f" (its gradebook: {nb['score'][0]:g} of {nb['score'][1]:g} points, written answers ungraded)")))
        parts = ", ".join(f"{p['notebook']} " + ("stopped" if p["seconds"] is None else f"{p['seconds']:.0f} s")
                          for p in nb["notebooks"])
        rows.append(("  per notebook", parts or "none started"))
        ratio = summary["ratio_nbgrader_over_ours"]
        rows.append(("ratio nbgrader / ours", f"{'>= ' if ratio['lower_bound'] else ''}{ratio['value']:.0f}x "
                     f"(median per submission, --jobs 1; by wall time {ratio['by_wall_time']:.0f}x)"
                     + (" - a lower bound: nbgrader was stopped" if ratio["lower_bound"] else "")))
    goal = summary["goal"]
    verdict = [f"median <= {goal['median_s_per_submission']:g} s: "
               f"{'yes' if summary['ours'][0]['median_s_per_submission'] <= goal['median_s_per_submission'] else 'NO'}"]
    if nb is not None:
        verdict.append(f">= {goal['speedup']:g}x faster: "
                       f"{'yes' if summary['ratio_nbgrader_over_ours']['value'] >= goal['speedup'] else 'NO'}"
                       + (" (so far)" if nb["stopped"] else ""))
    rows.append(("goal (issue 21, --jobs 1)", "; ".join(verdict)))
    width = max(len(label) for label, _ in rows)
    stages = "\n".join(f"    {line}" for line in summary["ours"][0]["stages"].splitlines())
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows) + \
        f"\n  where the time goes (grade-all --jobs 1):\n{stages}"


def main() -> int:
    parser = cli.Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=24, help="students in submitted/ (default 24; issue: >= 20)")
    parser.add_argument("--train-per-class", type=int, default=50,
                        help="synthetic training-batch images per class (default 50: 450 train / 50 val)")
    parser.add_argument("--test-per-class", type=int, default=1000,
                        help="synthetic test images per class (default 1000: 10,000, a real predictions.csv)")
    parser.add_argument("--nbgrader-timeout", type=float, default=1800,
                        help="seconds after which nbgrader autograde is stopped (default 1800)")
    parser.add_argument("--skip-nbgrader", action="store_true", help="time only our autograder")
    parser.add_argument("--out", type=Path, default=BENCH, help=f"work folder (default {BENCH.relative_to(REPO)})")
    args = parser.parse_args()
    if args.submissions < 1 or args.train_per_class < 10 or args.test_per_class < 1 or args.nbgrader_timeout <= 0:
        parser.error("need --submissions >= 1, --train-per-class >= 10 (the val split takes 10 %), "
                     "--test-per-class >= 1 and --nbgrader-timeout > 0")
    if args.submissions < 20:
        print(f"note: {args.submissions} submissions; issue 5 asks for at least 20 for the reported figures")

    info = machine()
    out = args.out.resolve()
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        parser.error(f"{out} is not empty and was not made by this benchmark (no {MARKER} in it); "
                     "pass an empty or new --out folder")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by tests/benchmarks/bench_grading.py; deleted and rebuilt on every run\n")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_average_at_start']}")
    course_data, labels_csv, manifest = build_data(out, args.train_per_class, args.test_per_class)
    data = manifest["counts"]
    print(f"synthetic data set: {data['train']:,} train / {data['val']:,} val / {data['test']:,} test images")
    submitted = out / "submitted"
    students = build_submissions(submitted, args.submissions, labels_csv)

    try:
        ours = [time_grade_all(submitted, out / f"autograded-jobs{jobs}", labels_csv, jobs, students)
                for jobs in (1, 2)]
        nbgrader = None
        if not args.skip_nbgrader:
            course = out / "nbgrader"
            prepare_nbgrader_course(course, out / "predictions" / f"{REFERENCE}.csv")
            nbgrader = time_nbgrader(course, course_data, args.nbgrader_timeout)
    except BenchError as problem:
        return cli.error(str(problem))
    summary = summarize(info, data, ours, nbgrader)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print("\nbench-grading summary:\n" + table(summary))
    print(f"\nwritten to {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
