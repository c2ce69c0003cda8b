#!/usr/bin/env bash
# Build and install llama-cpp-python (the embedded LLM runtime) into the project's venv.
#
# No usable prebuilt wheel exists for this platform, so pip compiles llama.cpp from the
# sdist: 2-6 minutes on two cores, needs a C/C++ compiler and cmake (pip fetches cmake
# from PyPI if the system has none). Idempotent: does nothing when the venv already
# imports llama_cpp at the pinned version.
#
# Usage: scripts/build_llama.sh [VENV_DIR]     (default: <repo>/.venv; or set PYTHON=...)
set -euo pipefail

VERSION="0.3.36"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
PY="${PYTHON:-$VENV/bin/python}"

if [ ! -x "$PY" ]; then
    echo "build_llama: no Python at $PY - create the venv first (python3.11 -m venv $VENV)" >&2
    exit 1
fi

have_it() {
    "$PY" - "$VERSION" <<'EOF' 2>/dev/null
import sys
import llama_cpp
sys.exit(0 if llama_cpp.__version__ == sys.argv[1] else 1)
EOF
}

if have_it; then
    echo "build_llama: llama-cpp-python $VERSION already installed in $VENV"
    exit 0
fi

if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    echo "build_llama: no C++ compiler found - install one first (Debian/Ubuntu: apt-get install -y build-essential cmake)" >&2
    exit 1
fi

echo "build_llama: building llama-cpp-python $VERSION from source (takes 2-6 minutes)..."
start=$(date +%s)
# LLAVA (multimodal) is not needed and only adds build time; native CPU flags are the
# default and right for a build made on the machine that runs it.
CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAVA_BUILD=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
    "$PY" -m pip install --disable-pip-version-check "llama-cpp-python==$VERSION"

if ! have_it; then
    echo "build_llama: llama-cpp-python installed but 'import llama_cpp' fails - see the pip output above" >&2
    exit 1
fi
echo "build_llama: done in $(( $(date +%s) - start )) s"
