"""The judge: loads the student process's exported programs as hostile data and runs the hidden checks on them.

``archive`` checks and cleans a ``.pt2`` file before torch ever reads it; ``program`` is what the hidden
suites (``autograder/suites``) query and run. No student Python is imported or executed here.
"""
