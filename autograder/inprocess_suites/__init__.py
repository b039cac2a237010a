"""Hidden pytest suites: one file per autograded part (test_<part id>.py), run in a child process."""
