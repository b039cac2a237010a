"""Which pairs of units share code: every two students' units of the same part, and every student unit against
every reference file.

A unit's fingerprints lose what the release gave (its unit of the same part) and what more than half the class
wrote in that part (code every correct answer must share), once the class has ``COMMON_MIN_STUDENTS``
students. Pairs are found through an index of fingerprints, so the work grows with the fingerprints shared, not
with every pair. Each side's share is the part of its own fingerprints found in the other: a student who copied
a long file into a short answer has a high share on their side only.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations

import course_config
from autograder.similarity.fingerprints import Fingerprints
from autograder.similarity.units import Unit

COMMON_MIN_STUDENTS = 4   # below this many students with a part, nothing counts as common code


def threshold(part: str) -> float:
    """The score at which a pair of this part is flagged."""
    return course_config.SIMILARITY_THRESHOLD_BY_PART.get(part, course_config.SIMILARITY_THRESHOLD)


@dataclass
class Match:
    part: str
    a: Unit
    b: Unit
    shared: frozenset[int]
    a_size: int   # a's fingerprints, once the release's and the common ones are dropped
    b_size: int
    _lines: dict[str, set[int]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def a_share(self) -> float:
        return len(self.shared) / self.a_size if self.a_size else 0.0

    @property
    def b_share(self) -> float:
        return len(self.shared) / self.b_size if self.b_size else 0.0

    @property
    def score(self) -> float:
        return max(self.a_share, self.b_share)

    @property
    def flagged(self) -> bool:
        return self.score >= threshold(self.part) and len(self.shared) >= course_config.SIMILARITY_MIN_SHARED

    def lines(self, side: str) -> set[int]:
        """The source lines of ``side`` ('a' or 'b') covered by the shared fingerprints."""
        if side not in self._lines:
            fingerprints = (self.a if side == "a" else self.b).fingerprints.lines
            covered: set[int] = set()
            for value in self.shared:
                first, last = fingerprints[value]
                covered.update(range(first, last + 1))
            self._lines[side] = covered
        return self._lines[side]

    def longest(self) -> int:
        """The longest run of consecutive matched lines, on the side where it is longer."""
        best = 0
        for side in ("a", "b"):
            run, previous = 0, None
            for line in sorted(self.lines(side)):
                run = run + 1 if previous is not None and line == previous + 1 else 1
                previous, best = line, max(best, run)
        return best


def _kept(unit: Unit, dropped: set[int]) -> set[int]:
    return set(unit.fingerprints.lines) - dropped


def compare(students: list[Unit], references: list[Unit], given: dict[str, Fingerprints]) -> list[Match]:
    """Every pair sharing at least one fingerprint, highest score first."""
    by_part: dict[str, list[Unit]] = defaultdict(list)
    for unit in students:
        by_part[unit.part].append(unit)
    matches = []
    for part, units in by_part.items():
        dropped = set(given[part].lines) if part in given else set()
        owners = Counter(value for unit in units for value in set(unit.fingerprints.lines))
        if len(units) >= COMMON_MIN_STUDENTS:
            dropped |= {value for value, count in owners.items() if count > len(units) / 2}
        kept = {id(unit): _kept(unit, dropped) for unit in units}
        index: dict[int, list[Unit]] = defaultdict(list)
        for unit in units:
            for value in kept[id(unit)]:
                index[value].append(unit)
        shared: dict[tuple[int, int], set[int]] = defaultdict(set)
        for value, holders in index.items():
            for a, b in combinations(holders, 2):
                shared[(id(a), id(b))].add(value)
        by_id = {id(unit): unit for unit in units}
        for (a, b), values in shared.items():
            matches.append(Match(part, by_id[a], by_id[b], frozenset(values), len(kept[a]), len(kept[b])))
        for reference in references:
            theirs = set(reference.fingerprints.lines)
            for unit in units:
                values = kept[id(unit)] & theirs
                if values:
                    matches.append(Match(part, unit, reference, frozenset(values), len(kept[id(unit)]), len(theirs)))
    return sorted(matches, key=lambda m: (-m.score, -len(m.shared), m.part, m.a.owner, m.b.owner))
