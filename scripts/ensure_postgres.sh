#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use answers at 127.0.0.1:5432 (database "test").
# On these machines it is started before the session; this waits for it, starts it if stopped,
# and installs it from Debian's packages as a last resort.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
for _ in $(seq 1 15); do ready && break; sleep 1; done
if ! ready; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "PostgreSQL absent : installation depuis les paquets Debian…" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { echo "PostgreSQL ne répond pas sur 127.0.0.1:5432" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null
echo "PostgreSQL prêt (127.0.0.1:5432, base test)."
