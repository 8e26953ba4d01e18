# Sourced by `make test`: makes sure a PostgreSQL server is reachable and
# exports TEST_DATABASE_URL for the tests (each test creates and drops its
# own database there).
#
# Order: TEST_DATABASE_URL or DATABASE_URL if set; else the local server on
# 127.0.0.1:5432 (trust auth), started with pg_ctlcluster if it is down;
# else a clear message on how to get one.

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
fi
export TEST_DATABASE_URL

_kmt_pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$TEST_DATABASE_URL" >/dev/null 2>&1
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) >/dev/null 2>&1
  fi
}

if ! _kmt_pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do
      echo "starting PostgreSQL $v (cluster main)" >&2
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
    done
    for _ in $(seq 1 30); do _kmt_pg_up && break; sleep 1; done
  fi
fi

if ! _kmt_pg_up; then
  cat >&2 <<MSG
error: no PostgreSQL server at $TEST_DATABASE_URL.
The tests need a real PostgreSQL (15 or newer) where they may create databases.
Either install one (Debian/Ubuntu: sudo apt-get install postgresql, then allow
trust or password auth for local TCP connections), or point the tests at one:
  TEST_DATABASE_URL=postgres://user:password@host:5432/postgres make test
MSG
  return 1 2>/dev/null || exit 1
fi
echo "tests use PostgreSQL at ${TEST_DATABASE_URL%%\?*}" >&2
