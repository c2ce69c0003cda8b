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

# Our build, not just our version: a -march=native build compiles in ggml's AMX kernels, which
# crash (SIGSEGV in ggml_backend_amx_mul_mat) on Xeons whose AMX the kernel does not hand out.
have_it() {
    "$PY" - "$VERSION" <<'EOF' 2>/dev/null
import sys
import llama_cpp
ok = llama_cpp.__version__ == sys.argv[1] and "AMX" not in llama_cpp.llama_print_system_info().decode()
sys.exit(0 if ok else 1)
EOF
}

# The instruction sets this CPU has, as ggml's CMake options; never AMX (see above).
cpu_flags() {
    local have pair opts="-DGGML_NATIVE=OFF"
    have=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
                avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
        case "$have" in *" ${pair%%:*} "*) opts="$opts -DGGML_${pair#*:}=ON" ;; esac
    done
    echo "$opts"
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
"$PY" -m pip uninstall -y -q llama-cpp-python 2>/dev/null || true  # a build with other flags
# LLAVA (multimodal) is not needed and only adds build time. --no-cache-dir: pip's wheel cache
# would hand back an earlier build made with other flags.
flags="$(cpu_flags)"
echo "build_llama: $flags"
CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAVA_BUILD=OFF $flags" \
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
    "$PY" -m pip install --disable-pip-version-check --no-cache-dir "llama-cpp-python==$VERSION"

if ! have_it; then
    echo "build_llama: llama-cpp-python installed but 'import llama_cpp' fails or reports AMX - see the pip output above" >&2
    exit 1
fi
echo "build_llama: done in $(( $(date +%s) - start )) s"
