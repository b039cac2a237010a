"""The only kit code a student's process can read: it loads the student's extracted notebooks and hands the
objects the hidden checks need to the judge as exported programs (``exports/``), or, for code that cannot be
exported, runs the in-process checks (``autograder/inprocess_suites``, mounted only then). Nothing here decides
a verdict; nothing here is secret."""
