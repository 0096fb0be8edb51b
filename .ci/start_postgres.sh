#!/usr/bin/env bash
# Install (Debian package) and start a local PostgreSQL for the gradebook tests, then print
# the URL the tests read from CNN_COURSE_TEST_PG_URL. Idempotent; prints nothing on failure.
set -u
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get install -y -q postgresql >/dev/null 2>&1 \
            || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1)) \
            || exit 0
    else
        exit 0
    fi
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters 2>/dev/null | grep -q "^$version *main"; then
    pg_createcluster "$version" main >/dev/null 2>&1 || exit 0
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
    su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
    sleep 1
done
su postgres -c "psql -qAtc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='grader') THEN CREATE ROLE grader LOGIN PASSWORD 'grader' CREATEDB; END IF; END \\\$\\\$;\"" >/dev/null 2>&1 || exit 0
echo "postgresql://grader:grader@127.0.0.1:5432/postgres"
