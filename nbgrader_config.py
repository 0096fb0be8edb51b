"""nbgrader configuration of the course (used by plain `nbgrader` run from this folder and
by `python -m autograder`).

solutions/<assignment>/<notebook>.ipynb   nbgrader *source* (solutions + hidden tests)
assignments/<assignment>/<notebook>.ipynb  nbgrader *release* (what students get)
"""

c = get_config()  # noqa: F821 (nbgrader injects get_config)

c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
# Files that are never copied into a release or a grading folder.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# The stub students see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Training cells need more than nbgrader's default of 30 s per cell.
c.Execute.timeout = 600
