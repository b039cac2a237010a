"""Publishing the student release: nbgrader generate_assignment from source/ (``python -m publishing.release``),
the leak check of what it wrote (``leak_check``), and the data-source file beside tools/dataset.py (``data_source``)."""
