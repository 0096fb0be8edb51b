"""nbgrader configuration for every user of the classroom's course environment.

Installed as ``<env>/etc/jupyter/nbgrader_config.py`` (a folder on every user's Jupyter
config path), so a student's server needs no copy of the course: the Assignment List, fetch,
submit and fetch feedback find the course and its exchange from here. The grader's Formgrader
reads it too, then the course folder's own ``nbgrader_config.py`` (whose ``exchange/`` is a
link to the same folder).

The exchange is ``$CNN_COURSE_EXCHANGE`` when set (deploy/: the shared volume), else
``exchange/`` of the classroom's prefix (this file is ``<prefix>/env/etc/jupyter/...``).
"""

import os

c = get_config()  # noqa: F821 (traitlets injects get_config)

_prefix = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))  # noqa: F821

c.CourseDirectory.course_id = "cnn-course"
c.Exchange.root = os.environ.get("CNN_COURSE_EXCHANGE") or os.path.join(_prefix, "exchange")
