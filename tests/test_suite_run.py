"""What a grading found (autograder/suite_run.py): the worst status wins, staff hear only what happened, and a
tampered submission carries the one message students see."""
from autograder.suite_run import STAFF_MESSAGE_CHARS, STATUS_SEVERITY, TAMPERED_PROBLEM, SuiteRun


def test_a_clean_run_merged_with_a_clean_judge_tells_staff_nothing():
    run, judge = SuiteRun(), SuiteRun(tests=[{"part": "swish"}], runs=2)
    run.merge(judge)
    assert run.staff_message is None and run.status == "ok" and run.runs == 2 and run.tests == [{"part": "swish"}]


def test_the_worst_status_wins_and_every_staff_message_is_kept():
    run, judge = SuiteRun(), SuiteRun()
    run.note("timeout", "resnet20: ran too long")
    judge.tampered(": the report's nonce is wrong")
    run.merge(judge)
    assert run.status == "tampered" == STATUS_SEVERITY[-1]
    run.worsen("memory")
    assert run.status == "tampered", "a milder status never replaces a worse one"
    assert run.staff_message == "flagged as tampered: the report's nonce is wrong"
    assert TAMPERED_PROBLEM in run.problems and "resnet20: ran too long" in run.problems


def test_a_staff_message_quoting_a_forged_report_is_one_bounded_line():
    """What the child was running comes from its report, which student code can fill up to its 1 MB cap."""
    run = SuiteRun()
    run.flag("error", "the export stage could not run: in " + "x\n" * 500_000, "the hidden tests could not run")
    run.tell_staff("needs manual grading: resnet20: data-dependent control flow")
    first, second = run.staff_message.split("; ")
    assert len(first) == STAFF_MESSAGE_CHARS and "\n" not in first and first.endswith("...")
    assert second == "needs manual grading: resnet20: data-dependent control flow"
