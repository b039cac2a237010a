"""What staff read: ``similarity.csv`` (every pair that shares code, per part), ``similarity.md`` (the flagged
pairs, ranked) and ``pairs/<rank>.html`` (the two codes side by side, the matched lines highlighted), plus the
count of flagged pairs per student ("similar to N") for the class summaries. Never a score.
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import course_config
from autograder.similarity.compare import Match

CSV_COLUMNS = ("part", "a", "b", "a_share", "b_share", "shared_fingerprints", "a_matched_lines", "b_matched_lines",
               "longest_match_lines", "flagged")


def similar_to(matches: list[Match]) -> dict[str, int]:
    """Student -> how many others (students or reference files) a flagged pair ties them to."""
    partners: dict[str, set[str]] = {}
    for match in matches:
        if match.flagged:
            for one, other in ((match.a.owner, match.b.owner), (match.b.owner, match.a.owner)):
                if not one.startswith("reference: "):
                    partners.setdefault(one, set()).add(other)
    return {student: len(others) for student, others in sorted(partners.items())}


def _row(match: Match) -> dict:
    return {"part": match.part, "a": match.a.owner, "b": match.b.owner, "a_share": f"{match.a_share:.3f}",
            "b_share": f"{match.b_share:.3f}", "shared_fingerprints": len(match.shared),
            "a_matched_lines": len(match.lines("a")), "b_matched_lines": len(match.lines("b")),
            "longest_match_lines": match.longest(), "flagged": "yes" if match.flagged else ""}


def _side(match: Match, side: str) -> str:
    unit = match.a if side == "a" else match.b
    covered = match.lines(side)
    rows = []
    for number, line in enumerate(unit.source.splitlines(), 1):
        mark = ' class="match"' if number in covered else ""
        rows.append(f'<tr{mark}><td class="n">{number}</td><td><pre>{html.escape(line)}</pre></td></tr>')
    return (f'<div class="side"><h2>{html.escape(unit.owner)} ({getattr(match, side + "_share"):.0%} of its '
            f'fingerprints shared)</h2><table>{"".join(rows)}</table></div>')


_STYLE = ("body{font-family:sans-serif;margin:1em}.pair{display:flex;gap:1em}.side{flex:1;min-width:0}"
          "table{border-collapse:collapse;width:100%}td{vertical-align:top;padding:0 .4em}td.n{color:#888;"
          "text-align:right;user-select:none}pre{margin:0;white-space:pre-wrap;font-size:12px}"
          "tr.match{background:#ffe08a}h2{font-size:14px}")


def pair_page(match: Match, rank: int) -> str:
    title = f"{course_config.ASSIGNMENT_ID} similarity #{rank}: {match.part}"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{len(match.shared)} shared fingerprints; longest run of matched lines: {match.longest()}. Highlighted "
            f"lines are covered by shared fingerprints (code the release gave and code most of the class wrote "
            f"are not counted). A flag asks a person to look: it is not a verdict.</p>"
            f"<div class=\"pair\">{_side(match, 'a')}{_side(match, 'b')}</div></body></html>\n")


def _stricter() -> str:
    by_value: dict[float, list[str]] = {}
    for part, value in course_config.SIMILARITY_THRESHOLD_BY_PART.items():
        by_value.setdefault(value, []).append(part)
    return "; ".join(f"{value:.0%} for {', '.join(parts)}" for value, parts in by_value.items())


def write(matches: list[Match], out: Path, problems: list[str], students: int, references: int) -> dict[str, int]:
    """Write the three outputs into ``out``; returns "similar to N" per student."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "similarity.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(_row(match) for match in matches)
    flagged = [match for match in matches if match.flagged]
    pages = out / "pairs"
    pages.mkdir(exist_ok=True)
    for old in pages.glob("*.html"):
        old.unlink()
    lines = [f"# {course_config.ASSIGNMENT_ID}: code similarity", "",
             f"{students} students, {references} reference file{'s' * (references != 1)}; {len(flagged)} flagged pairs (the larger share at "
             f"least {course_config.SIMILARITY_THRESHOLD:.0%}, {_stricter()}; at least {course_config.SIMILARITY_MIN_SHARED} "
             "shared fingerprints). A flag asks a person to look at the pair's page; it never changes a score.", ""]
    if flagged:
        lines += ["| # | part | a | b | a's share | b's share | longest match (lines) | page |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for rank, match in enumerate(flagged, 1):
            (pages / f"{rank:03d}.html").write_text(pair_page(match, rank), encoding="utf-8")
            lines.append(f"| {rank} | {match.part} | {match.a.owner} | {match.b.owner} | {match.a_share:.0%} | "
                         f"{match.b_share:.0%} | {match.longest()} | [pair](pairs/{rank:03d}.html) |")
    counts = similar_to(matches)
    if counts:
        lines += ["", "Similar to N (students and reference files flagged with each student):", ""]
        lines += [f"- {student}: similar to {count}" for student, count in counts.items()]
    if problems:
        lines += ["", "Not compared:", ""] + [f"- {problem}" for problem in problems]
    (out / "similarity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / SIMILAR_TO).write_text(json.dumps(counts, indent=1) + "\n", encoding="utf-8")
    return counts


SIMILAR_TO = "similar_to.json"   # {student: N}: read by grade-all's summary and final-grades' flags


def read_similar_to(folder: Path) -> dict[str, int]:
    """``similar_to.json`` of a similarity run's folder; {} when there is none or it is not one we wrote."""
    try:
        data = json.loads((folder / SIMILAR_TO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}
