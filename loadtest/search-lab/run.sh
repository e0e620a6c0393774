#!/usr/bin/env bash
# The search lab: 1,000,000 tasks (gen.py, the seed's vocabulary, 200
# boards, one holding 220,000) in a private MariaDB, and bench.py's p50/p99
# of search statements on them at one connection.
#
#   loadtest/search-lab/run.sh                      # make the table, then bench
#   SKIP_LOAD=1 loadtest/search-lab/run.sh hybrid current   # bench only
#   STOP=1 loadtest/search-lab/run.sh               # stop the private server
#
# Needs python3 with pymysql (pip install --user pymysql). The server (its
# data in $DIR, default /tmp/searchlab, port $PORT, default 3399) has a
# 512M buffer pool, as `taskraft demo`'s. Bounded: the load is 1,000,000 rows
# (about 3 minutes), each bench statement runs N (200) queries per set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${DIR:-/tmp/searchlab}
port=${PORT:-3399}
tasks=${TASKS:-1000000}
m() { mysql -h127.0.0.1 -P"$port" -uroot "$@"; }
if [ -n "${STOP:-}" ]; then
  kill "$(cat "$dir/mysqld.pid")"
  exit 0
fi
if ! m -e 'SELECT 1' >/dev/null 2>&1; then
  mkdir -p "$dir" "$dir/tmp"  # its own tmpdir: a starting MariaDB deletes every #sql* file there
  [ -d "$dir/data/mysql" ] || mariadb-install-db --no-defaults --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
  user=()
  [ "$(id -u)" = 0 ] && user=(--user=root)
  setsid /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" \
    --log-error="$dir/error.log" --tmpdir="$dir/tmp" --innodb-buffer-pool-size=512M \
    --innodb-flush-log-at-trx-commit=2 --skip-log-bin --skip-name-resolve \
    --character-set-server=utf8mb4 "${user[@]}" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 100); do m -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
fi
if [ -z "${SKIP_LOAD:-}" ]; then
  m -e 'DROP DATABASE IF EXISTS searchlab; CREATE DATABASE searchlab'
  for f in $(ls "$repo"/sql/V*.sql | sort -V); do m searchlab <"$f"; done
  # A fresh table without the FULLTEXT index (V7 leaves a hidden
  # FTS_DOC_ID that a later ADD FULLTEXT does not fill for loaded rows),
  # loaded, then indexed.
  m -N searchlab -e 'SHOW CREATE TABLE tasks' | cut -f2- | sed 's/\\n/\n/g' |
    sed -e '/FULLTEXT KEY/d' -e 's/CREATE TABLE `tasks`/CREATE TABLE `tasks_new`/' |
    sed -e ':a;N;$!ba;s/,\n)/\n)/' >"$dir/create.sql"
  m searchlab <"$dir/create.sql"
  m searchlab -e 'DROP TABLE tasks; RENAME TABLE tasks_new TO tasks'
  python3 "$here/gen.py" "$tasks" "$dir/tasks.tsv"
  m -e 'SET GLOBAL local_infile = 1'
  m --local-infile=1 searchlab -e "LOAD DATA LOCAL INFILE '$dir/tasks.tsv' INTO TABLE tasks
    (id, title, description, status, position, priority, assignee, labels, version,
     created_at, updated_at, board_id, column_id, archived)"
  m searchlab -e 'ALTER TABLE tasks ADD FULLTEXT INDEX tasks_text (title, description);
    ANALYZE TABLE tasks' >/dev/null
fi
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(hybrid hybrid-visible current)
python3 "$here/bench.py" --port "$port" --table tasks --boards 20 -n "${N:-200}" "${variants[@]}"
