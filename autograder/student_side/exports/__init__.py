"""Export tests: one file per autograded part (export_<part id>.py), run in the student's process."""
