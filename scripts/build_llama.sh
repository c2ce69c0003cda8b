#!/usr/bin/env bash
# Build and install llama-cpp-python (the embedded LLM runtime) into the project's venv.
#
# No usable prebuilt wheel exists for this platform, so pip compiles llama.cpp from the
# sdist: 2-6 minutes on two cores, needs a C/C++ compiler and cmake (pip fetches cmake
# from PyPI if the system has none). Idempotent: does nothing when the venv already
# imports llama_cpp at the pinned version, built with this machine's flags (the stamp below).
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

# Our build, not just our version: the stamp records the flags the installed build was made with,
# so a build made another way (say, -march=native with GCC's broken AMX code, below) is redone.
STAMP="$VENV/.llama-cpp-build"
have_it() {
    [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION $1" ] || return 1
    "$PY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null
}

# The instruction sets this CPU has, as ggml's CMake options. AMX (Sapphire Rapids and later)
# reads prompts about 1.6x faster, but GCC 12 drops the stores that fill ggml's tile config
# before `ldtilecfg` (dead-store elimination does not see the instruction read it), so the first
# decode dies with SIGSEGV in ggml_backend_amx_mul_mat; -fno-dse -fno-tree-dse keeps the stores.
cpu_flags() {
    local have pair opts="-DGGML_NATIVE=OFF"
    have=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
                avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 \
                amx_tile:AMX_TILE amx_int8:AMX_INT8 amx_bf16:AMX_BF16; do
        case "$have" in *" ${pair%%:*} "*) opts="$opts -DGGML_${pair#*:}=ON" ;; esac
    done
    case "$opts" in
        *AMX_INT8*) opts="$opts -DCMAKE_C_FLAGS=-fno-dse\ -fno-tree-dse -DCMAKE_CXX_FLAGS=-fno-dse\ -fno-tree-dse" ;;
    esac
    echo "$opts"
}

flags="$(cpu_flags)"
if have_it "$flags"; then
    echo "build_llama: llama-cpp-python $VERSION already installed in $VENV"
    exit 0
fi

if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    echo "build_llama: no C++ compiler found - install one first (Debian/Ubuntu: apt-get install -y build-essential cmake)" >&2
    exit 1
fi

echo "build_llama: building llama-cpp-python $VERSION from source (takes 2-6 minutes)..."
start=$(date +%s)
"$PY" -m pip uninstall -y -q llama-cpp-python 2>/dev/null || true  # a build with other flags
# LLAVA (multimodal) is not needed and only adds build time. --no-cache-dir: pip's wheel cache
# would hand back an earlier build made with other flags.
echo "build_llama: $flags"
CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAVA_BUILD=OFF $flags" \
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
    "$PY" -m pip install --disable-pip-version-check --no-cache-dir "llama-cpp-python==$VERSION"

echo "$VERSION $flags" > "$STAMP"
if ! have_it "$flags"; then
    rm -f "$STAMP"
    echo "build_llama: llama-cpp-python installed but 'import llama_cpp' fails - see the pip output above" >&2
    exit 1
fi
echo "build_llama: done in $(( $(date +%s) - start )) s"
