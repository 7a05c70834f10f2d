#!/usr/bin/env bash
# Creates (or reuses) the virtualenv the datafusion-python host runs in, at
# ${CARGO_TARGET_DIR:-<repo>/target}/pyenv, with the pinned host packages and
# host_harness/python installed in editable mode. Prints the venv's python path.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
VENV="$TARGET_DIR/pyenv"
PKG="$REPO/host_harness/python"
PYTHON="${PYTHON:-python3}"

# Pinned host packages; the stamp records what the venv was provisioned with.
REQUIREMENTS="datafusion==55.0.0 pyarrow==26.0.1 deltalake==1.6.6 pytest==9.2.0 moto[server]==5.2.5"
STAMP="$VENV/.dfplugin-provisioned"
# The editable install points at this checkout: a venv provisioned for another checkout
# (a shared target directory) must be re-pointed, or tests would import that checkout's code.
WANT="$REQUIREMENTS|$PKG|$(sha256sum "$PKG/pyproject.toml" | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "python-tests: creating virtualenv $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] \
    || ! "$VENV/bin/python" -c "import dfplugin, datafusion, pyarrow, deltalake, pytest" >/dev/null 2>&1 \
    || [ "$("$VENV/bin/python" -c 'import dfplugin, os; print(os.path.dirname(os.path.dirname(os.path.realpath(dfplugin.__file__))))')" != "$(realpath "$PKG")" ]; then
    echo "python-tests: installing $REQUIREMENTS and $PKG (editable)" >&2
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $REQUIREMENTS
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$PKG"
    echo "$WANT" > "$STAMP"
fi

echo "$VENV/bin/python"
