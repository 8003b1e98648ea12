#!/usr/bin/env bash
# Builder step for Jetsons whose JetPack ships an older Python than ScopeHive needs (>= 3.10):
# Jetson Nano (JetPack 4.6, Python 3.6) and Xavier NX (JetPack 5.1, Python 3.8). It builds
# CPython 3.10 into /opt/python, TensorRT's Python bindings for it from NVIDIA's TensorRT OSS
# sources against the TensorRT already in the image, and a pycuda wheel, all into /wheels.
# Usage (in a Dockerfile builder stage): jetson-python310.sh <TensorRT OSS tag, e.g. 8.5.2>
set -euo pipefail
trt_tag="$1"
py_version=3.10.15

apt-get update
apt-get install -y --no-install-recommends build-essential cmake git wget ca-certificates \
  libssl-dev zlib1g-dev libbz2-dev libffi-dev libsqlite3-dev liblzma-dev libreadline-dev
rm -rf /var/lib/apt/lists/*

cd /tmp
wget -q "https://www.python.org/ftp/python/${py_version}/Python-${py_version}.tgz"
tar xzf "Python-${py_version}.tgz"
(cd "Python-${py_version}" && ./configure --prefix=/opt/python --enable-shared LDFLAGS="-Wl,-rpath,/opt/python/lib" \
  && make -j"$(nproc)" && make install)
/opt/python/bin/python3.10 -m pip install --no-cache-dir wheel setuptools pybind11

git clone --depth 1 --branch "${trt_tag}" https://github.com/NVIDIA/TensorRT.git /tmp/trt
git clone --depth 1 --branch v2.10.4 https://github.com/pybind/pybind11.git /tmp/pybind11
mkdir -p /tmp/ext/python3.10/include
cp -r /opt/python/include/python3.10 /tmp/ext/python3.10/include/
(cd /tmp/trt/python && EXT_PATH=/tmp/ext PYTHON_MAJOR_VERSION=3 PYTHON_MINOR_VERSION=10 TARGET_ARCHITECTURE=aarch64 \
  TRT_OSSPATH=/tmp/trt bash build.sh)
mkdir -p /wheels
cp /tmp/trt/python/build/dist/*.whl /wheels/

export PATH=/usr/local/cuda/bin:$PATH
/opt/python/bin/python3.10 -m pip wheel --no-cache-dir --wheel-dir /wheels "pycuda==2024.1.2"
