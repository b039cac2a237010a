"""nbgrader's configuration for the HW2 kit: `make release` runs `nbgrader generate_assignment hw2`.

The course directory is this repository: source/hw2/ -> release/hw2/. nbgrader's gradebook database
goes to build/ (git-ignored), never next to the notebooks.
"""
from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

_ROOT = Path(__file__).resolve().parent

c.CourseDirectory.root = str(_ROOT)
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.db_url = f"sqlite:///{_ROOT / 'build' / 'nbgrader' / 'gradebook.db'}"
# Students get the notebooks, tools/ and sample_predictions.csv; nothing a run leaves behind.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
    "data", "saved_model", "predictions.csv", "*.pth", "*.zip", "*.npy",
]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
