#!/usr/bin/env bash
# Installs everything Territoria needs into .venv (idempotent: skipped when already up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.territoria-installed"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installation des dépendances dans .venv…" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
    # openfisca-france-local (CAF quotient familial) pins pandas<2, which pyarrow 26 (numpy 2)
    # cannot live with; it only uses pandas in a test helper, so it is installed without it.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "openfisca-france-local==6.17.11" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import territoria, duckdb, psycopg, openfisca_france_local"
    echo "$wanted" > "$stamp"
fi
# Browser tests (Playwright) drive Debian's Chromium; Playwright never downloads a browser.
if ! command -v chromium >/dev/null 2>&1; then
    echo "Installation de Chromium (paquet Debian) pour les tests de navigateur…" >&2
    if [ "$(id -u)" = 0 ]; then
        { apt-get install -y -q chromium >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }; } \
            || echo "Chromium n'a pas pu être installé : les tests de navigateur seront ignorés." >&2
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get install -y -q chromium >/dev/null \
            || echo "Chromium n'a pas pu être installé : les tests de navigateur seront ignorés." >&2
    else
        echo "Installez le paquet Debian « chromium » pour les tests de navigateur." >&2
    fi
fi
