#!/usr/bin/env bash
# Lint, then run the whole test suite once per Keras backend, each backend in
# its own pytest process. Extra arguments go to pytest, e.g. --run-large.
set -uo pipefail
cd "$(dirname "$0")/.."
# Tests that need real data (MNIST, Fashion-MNIST) find it through
# ANYSMA_DATA_DIR and skip without it; use the offline copies next to the
# repository when the variable is not set.
if [[ -z "${ANYSMA_DATA_DIR:-}" && -d ../shared/data ]]; then
    export ANYSMA_DATA_DIR="$(cd ../shared/data && pwd)"
fi
status=0
python -m ruff check . || status=1
for backend in jax torch tensorflow; do
    echo "=== KERAS_BACKEND=${backend} ==="
    KERAS_BACKEND="${backend}" python -m pytest -n 2 -q "$@" || status=1
done
# Every `>>>` example of the docstrings, once (on JAX).
echo "=== docstring examples (KERAS_BACKEND=jax) ==="
KERAS_BACKEND=jax python -m pytest -n 2 -q --doctest-modules anysma || status=1
# The documentation site builds without a warning (offline; into a scratch
# folder, so the checkout stays clean).
echo "=== mkdocs build --strict ==="
site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 KERAS_BACKEND=jax python -m mkdocs build --strict --quiet \
    --site-dir "${site}" || status=1
rm -rf "${site}"
exit "${status}"
