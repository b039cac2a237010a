"""nbgrader's settings for this folder, used when you run `nbgrader validate` here.

Under nbgrader every training run of the notebooks shrinks to a smoke test (see their first code cells), so a
cell that still runs past the limit below is a real problem: it fails the validation instead of being
interrupted and skipped.
"""
c = get_config()  # noqa: F821 (nbgrader provides it)
c.Execute.timeout = 300                  # seconds one cell may run
c.Execute.interrupt_on_timeout = False   # a cell that runs out of time is an error, not a skipped cell
