"""The class's code-similarity check ("We will check it!"): each graded object's code, and each notebook's
training code, compared between every two students and against code the instructor collects (``--reference``).

``units.py`` says what is compared (per part, from the notebooks, as the grader finds them), ``fingerprints.py``
how (normalised tokens, winnowed k-gram hashes, as MOSS), ``compare.py`` which pairs match, ``report.py`` what
staff read (``similarity.csv``, ``similarity.md``, one HTML page per flagged pair). A similarity is a flag for a
person to look at, never a score.
"""
