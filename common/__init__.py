"""What every command shares, below the grader and the staff tools: the command-line convention (``cli``), the
predictions library (``predictions``) and the gradebooks and histograms (``reports``). It imports only
``course_config``; everything else may import it (tests/test_layout.py walks the order).
"""
