"""A PostgreSQL gradebook shared by two graders running at the same time.

Needs a server: CNN_COURSE_TEST_PG_URL (``.ci/run`` starts one with
``.ci/start_postgres.sh``). Without it the test is skipped with that message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest

from autograder.cli import SAMPLES_DIR

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PG_ENV = "CNN_COURSE_TEST_PG_URL"


@pytest.fixture
def pg_url():
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (.ci/run starts one)")
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"gradebook_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + "/" + name
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def test_two_graders_share_one_postgres_gradebook(pg_url, tmp_path):
    groups = {"a": ["alice_correct", "bob_partly_wrong"], "b": ["carol_untouched", "dave_raises"]}
    procs = []
    for key, students in groups.items():
        subs = tmp_path / f"subs_{key}"
        for student in students:
            shutil.copytree(SAMPLES_DIR / student, subs / student)
        cmd = [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            str(subs),
            "--out",
            str(tmp_path / f"out_{key}"),
            "--db",
            pg_url,
            "--jobs",
            "1",
        ]
        procs.append(
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out

    import psycopg2

    con = psycopg2.connect(pg_url)
    cur = con.cursor()
    cur.execute(
        "SELECT student.id, SUM(grade.auto_score), COUNT(*) FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"
    )
    totals = {sid: (float(total), count) for sid, total, count in cur.fetchall()}
    con.close()
    assert set(totals) == {s for group in groups.values() for s in group}
    full = totals["alice_correct"][0]
    assert full > 0
    assert totals["carol_untouched"][0] == 0
    assert 0 < totals["bob_partly_wrong"][0] < full
    assert len({count for _, count in totals.values()}) == 1, "every student has each grade once"
