"""Gradebooks, histograms and the points line of every class summary, for every command that writes them
(predictions, grade-all, final grades): one CSV writer, one points histogram and one way to say a class's
points, so that everything a course sees has the same shape."""
from __future__ import annotations

import csv
import statistics
from pathlib import Path

import numpy as np


def histogram_path(gradebook) -> Path:
    gradebook = Path(gradebook)
    return gradebook.with_name(gradebook.stem + "_histogram.png")


def write_gradebook(rows: list[dict], out: Path, columns) -> None:
    """A gradebook CSV: a header of ``columns``, one row per student (also the autograder's gradebook)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_histogram(points: list[float], max_points: float, title: str, png: Path, bonus: float = 0.0) -> None:
    """Points histogram; a bare Agg Figure (no pyplot), so no global backend changes in the caller. ``bonus``
    widens the axis past the maximum (extra credit), which a dashed line marks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.hist(points, bins=np.linspace(0, max_points + bonus, 25), edgecolor="black")
    ax.set_xlabel(f"points (of {max_points:g}" + (f", + {bonus:g} bonus)" if bonus else ")"))
    if bonus:
        ax.axvline(max_points, color="gray", linestyle="--", linewidth=1)
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    fig.savefig(png, dpi=100)


def points_line(points: list[float], max_points: float, bonus: float = 0.0) -> str:
    """``mean M, median D of MAX`` (``(+ B bonus)`` when there is a bonus); an empty class counts as one 0."""
    points = points or [0.0]
    return (f"mean {statistics.mean(points):.2f}, median {statistics.median(points):.2f} of {max_points:g}"
            + (f" (+ {bonus:g} bonus)" if bonus else ""))
