#!/usr/bin/env bash
# Starts the local PostgreSQL cluster (installed by `make deps`) and makes
# the role the tests and `make run` use: kpe / kpe, allowed to create
# databases, on 127.0.0.1:5432. Works without systemd (CI containers).
set -euo pipefail
SUDO=""; AS_PG="runuser -u postgres --"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; AS_PG="sudo -u postgres"; fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx main; then
  $SUDO pg_createcluster "$ver" main
fi
ver=$(pg_lsclusters -h | awk '$2=="main"{print $1; exit}')
if ! pg_lsclusters -h | awk '$2=="main"{print $4}' | grep -qx online; then
  echo ">> starting PostgreSQL $ver"
  $SUDO pg_ctlcluster "$ver" main start
fi
for i in $(seq 50); do
  $AS_PG psql -qAtc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.2
done
if [ "$($AS_PG psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname='kpe'")" != 1 ]; then
  $AS_PG psql -qc "CREATE ROLE kpe LOGIN CREATEDB PASSWORD 'kpe'"
fi
echo ">> PostgreSQL $ver is running (role kpe on 127.0.0.1:5432)"
