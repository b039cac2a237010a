"""The term around the grader: what staff run after ``grade-all`` (``python -m term``): the class into
nbgrader's gradebook without running a notebook (``nbgrader_import``), the code-similarity check with outside
code (``python -m term similarity``; the check itself is ``autograder.similarity``, which grade-all runs on
its class), and one grade per student after the TAs' hand grading (``final_grades``); and the one runner of
nbgrader (``nbgrader``) that ``publishing`` uses too. It imports the grader; the grader never imports it.
"""
