"""nbgrader settings of the grader's account on a cluster (deploy/formgrader/formgrader.yaml):
copy to /home/jovyan/.jupyter/nbgrader_config.py on the course volume. nbgrader reads it
before the course folder's own nbgrader_config.py, which does not set a gradebook URL, so the
Formgrader and every grading run use the PostgreSQL gradebook (deploy/postgres/values.yaml)."""

import os

c = get_config()  # noqa: F821 (traitlets injects get_config)

if os.environ.get("NBGRADER_DB_URL"):
    c.CourseDirectory.db_url = os.environ["NBGRADER_DB_URL"]
