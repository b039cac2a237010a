"""Hidden pytest suites: one file per autograded part (test_<part id>.py), run by the judge on exported programs."""
