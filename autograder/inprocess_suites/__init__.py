"""In-process fallback suites: one file per autograded part (test_<part id>.py), run in the student's process."""
