"""Packaging the grader for Gradescope: ``python -m gradescope_package.autograder_zip build`` writes autograder.zip
from the autograder package, the two scripts of ``scripts/`` and the held-out labels."""
