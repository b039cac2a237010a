"""What grading one submission found, stage by stage: the outcomes, the parts without any, the problems for the
student, and the worst status seen (``STATUS_SEVERITY``). The runner fills it; ``results.py`` turns it into
results.json and feedback.md."""
from __future__ import annotations

from dataclasses import dataclass, field

from autograder import profile
from autograder.results import one_line

MANUAL = "needs manual grading"
# How bad each status is; the submission's status is the worst of its runs.
STATUS_SEVERITY = ("ok", MANUAL, "exited", "timeout", "processes", "memory", "disk", "error", "tampered")
# Characters of each message for staff: some quote what a child reported (what it was running), which student
# code can forge up to the report's cap; staff read them in results.json and the grading log.
STAFF_MESSAGE_CHARS = 1000
TAMPERED_PROBLEM = ("this submission was flagged for review by the course staff; its score is 0 until they have "
                    "looked at it")


@dataclass
class SuiteRun:
    tests: list[dict] = field(default_factory=list)        # {"nodeid", "part", "check", "name", "passed", "message"}
    part_errors: dict[str, str] = field(default_factory=dict)   # part -> why it has no outcomes
    problems: list[str] = field(default_factory=list)      # for the student's feedback, one line each
    status: str = "ok"                                     # the worst of STATUS_SEVERITY seen
    staff_message: str | None = None                       # why a submission was flagged or failed to run
    needs_manual: dict[str, str] = field(default_factory=dict)   # part -> why a TA grades it (what blocked it)
    review: list[str] = field(default_factory=list)        # for staff: exported programs unlike the live objects
    device: str = "cpu"
    sandbox: str = "subprocess"
    runs: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)   # stage -> seconds (autograder/profile.py)

    def worsen(self, status: str) -> None:
        if STATUS_SEVERITY.index(status) > STATUS_SEVERITY.index(self.status):
            self.status = status

    def note(self, status: str, problem: str) -> None:
        self.problems.append(problem)
        self.worsen(status)

    def flag(self, status: str, staff_message: str, problem: str) -> None:
        self.tell_staff(staff_message)
        self.note(status, problem)

    def tampered(self, why: str) -> None:
        """Flag the submission: its score is 0 until staff have looked (``why`` is for them only)."""
        self.flag("tampered", f"flagged as tampered{why}", TAMPERED_PROBLEM)

    def tell_staff(self, message: str | None) -> None:
        if message:
            self.staff_message = "; ".join(filter(None, (self.staff_message, one_line(message, STAFF_MESSAGE_CHARS))))

    def merge(self, other: "SuiteRun") -> None:
        """Fold a stage that ran beside the others (the judge) into the submission's run."""
        self.tests += other.tests
        self.part_errors.update(other.part_errors)
        self.problems += other.problems
        self.runs += other.runs
        profile.add(self.timings, other.timings)
        self.tell_staff(other.staff_message)
        self.worsen(other.status)
