"""nbgrader's settings for this folder, used when you run `nbgrader validate` here.

Under nbgrader every training run of the notebooks shrinks to a smoke test (see their first code cells), so
validating runs every cell of a notebook in a minute or two. Validation fails when any code cell raises, not
only when a graded test cell does, and says which one ("code cell N": the N-th code cell from the top, the
``In [N]`` Jupyter shows after a run from the top). A cell that runs past the limit below is stopped and
reported in one line (under the smoke settings no cell should come near it: look for a loop that never ends,
or work that ignores EPOCHS and TRAIN_SUBSET); the cells after it still run.
"""
from nbgrader.validator import Validator

c = get_config()  # noqa: F821 (nbgrader provides it)
c.Execute.timeout = 300                  # seconds one cell may run
c.Execute.interrupt_on_timeout = True    # stop a cell that runs too long, report it, go on with the next
c.Execute.error_on_timeout = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}
c.Validator.validate_all = True          # every code cell counts, not only the graded test cells

_TIMED_OUT = "CellTimeoutError"
# nbgrader may read this file more than once: keep its own methods from the first reading.
_graded_failed_cells = getattr(Validator, "_hw2_graded_failed_cells", Validator._get_failed_cells)
_graded_error = getattr(Validator, "_hw2_graded_error", Validator._extract_error)


def _failed_cells(self, nb):
    """The graded cells nbgrader fails, and (``validate_all``) every other code cell with an error output.
    Unlike nbgrader's own ``validate_all``, text on stderr (progress bars, warnings) is not a failure."""
    numbers = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            numbers[id(cell)] = len(numbers) + 1
    self._hw2_cell_numbers = numbers
    failed = [cell for cell in _graded_failed_cells(self, nb) if cell.metadata.get("nbgrader", {}).get("grade")]
    if self.validate_all:
        failed += [cell for cell in nb.cells if cell.cell_type == "code" and cell not in failed
                   and any(output.output_type == "error" for output in cell.outputs)]
    return sorted(failed, key=lambda cell: nb.cells.index(cell))


def _cell_error(self, cell):
    """What went wrong in ``cell``, headed by its number: one line for a timeout, else the error line above
    nbgrader's traceback."""
    number = getattr(self, "_hw2_cell_numbers", {}).get(id(cell))
    name = f"code cell {number}" if number else "this cell"
    errors = [output for output in cell.get("outputs", []) if output.output_type == "error"]
    if any(output.ename == _TIMED_OUT for output in errors):
        limit = self.config.Execute.get("timeout", 300)
        return f"{name} ran longer than {limit} s under validate's smoke settings"
    details = _graded_error(self, cell)
    if errors:
        return f"{name} raised {errors[0].ename}: {errors[0].evalue}\n\n{details}"
    return f"{name}: {details}"


Validator._hw2_graded_failed_cells, Validator._hw2_graded_error = _graded_failed_cells, _graded_error
Validator._get_failed_cells, Validator._extract_error = _failed_cells, _cell_error
