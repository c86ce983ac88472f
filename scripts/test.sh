#!/usr/bin/env bash
# Run the whole test suite once per Keras backend, each in its own process.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for backend in jax torch tensorflow; do
    echo "=== KERAS_BACKEND=${backend} ==="
    KERAS_BACKEND="${backend}" python -m pytest -n 2 -q "$@" || status=1
done
exit "${status}"
