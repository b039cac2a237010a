"""Instructor-only material: the answer key and the reference ResNet-20 training recipe.

Nothing here ships to students (nbgrader copies only ``source/``). The model code is not copied here:
``kit.load_lab3()`` extracts ``ResNet20`` from the Lab 3 source notebook, as the autograder does.
"""
