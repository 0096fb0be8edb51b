"""The course's autograder, built on nbgrader.

``python -m autograder release`` regenerates ``assignments/`` from ``solutions/``;
``python -m autograder grade <dir>`` autogrades ``<dir>/<student>/<assignment>/*.ipynb``
safely (sandbox, limits, guarded test cells), in parallel or on Dask;
``python -m autograder demo`` grades the shipped sample submissions.
"""
