#!/usr/bin/env bash
# Build llama.cpp's own OpenAI-compatible `llama-server` from the llama.cpp sources vendored in the
# llama-cpp-python sdist (the only llama.cpp source reachable from PyPI). We build the C++ server,
# not the Python bindings: it reports per-request timings and speaks the `json_schema` /
# `{"type":"json_object","schema":...}` response formats the inference gateway uses.
#
# The CPU flags are fixed and safe for every x86-64 machine we run on: GGML_NATIVE=ON
# auto-enables AMX on this CPU and crashes. The output directory is keyed by version *and* flags,
# so a build made with other flags is never reused.
#
# Usage: build-llama-server.sh [CACHE_DIR]   -> prints the path of the llama-server binary
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CMAKE_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF
  -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release)

cache="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/emily}"
key=$(printf '%s %s' "$LLAMA_CPP_PYTHON_VERSION" "${CMAKE_FLAGS[*]}" | sha256sum | cut -c1-12)
prefix="$cache/llama.cpp-$LLAMA_CPP_PYTHON_VERSION-$key"
bin="$prefix/bin/llama-server"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

for tool in cmake g++ make; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: '$tool' is missing (apt-get install cmake g++ make)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-llama-server: fetching llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist" >&2
python3 -m pip download --quiet --no-deps --no-binary :all: --no-cache-dir \
  "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$work" >&2
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src="$work/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"

echo "build-llama-server: building llama-server (flags key $key; a few minutes on 2 cores)" >&2
cmake -S "$src" -B "$work/build" "${CMAKE_FLAGS[@]}" >"$work/cmake.log" 2>&1 \
  || { tail -40 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; exit 1; }

mkdir -p "$prefix/bin"
install -m 0755 "$work/build/bin/llama-server" "$bin.tmp"
mv "$bin.tmp" "$bin"
"$bin" --version >&2 || true
echo "$bin"
