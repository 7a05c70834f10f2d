#!/usr/bin/env bash
# Runs the dfplugin (datafusion-python host) tests against the built plugin.
#
# Assumes the Rust build already ran (`make build` writes target/release/libcodeanatomy_plugin.so
# and target/release/examples/libfixture_*.so). Creates or reuses a virtualenv at
# ${CARGO_TARGET_DIR:-<repo>/target}/pyenv with the pinned host packages, installs
# host_harness/python in editable mode, and runs pytest on host_harness/python/tests.
#
# Environment: DFPLUGIN_LIB (default: <target>/release/libcodeanatomy_plugin.so),
# PYTHON (interpreter used to create the venv, default python3), PYTEST_ARGS (extra args;
# arguments given to this script are passed to pytest too).
# Exit status: pytest's, except that "no tests collected" (5) is turned into a failure (1).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
PKG="$REPO/host_harness/python"
export DFPLUGIN_LIB="${DFPLUGIN_LIB:-$TARGET_DIR/release/libcodeanatomy_plugin.so}"
export DFPLUGIN_FIXTURES="${DFPLUGIN_FIXTURES:-$TARGET_DIR/release/examples}"

if [ ! -f "$DFPLUGIN_LIB" ]; then
    echo "python-tests: plugin library $DFPLUGIN_LIB not found; run \`make build\` first" >&2
    exit 1
fi

VENV_PYTHON="$("$REPO/scripts/python-env.sh")"

set +e
# shellcheck disable=SC2086
"$VENV_PYTHON" -m pytest "$PKG/tests" -p no:cacheprovider ${PYTEST_ARGS:-} "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "python-tests: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
