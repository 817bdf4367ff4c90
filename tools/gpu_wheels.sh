#!/usr/bin/env bash
# Fetch, on a machine with a package registry, the wheels the GPU check needs beyond what a GPU
# machine with torch, transformers, accelerate and peft already has: rltf's import-time needs
# (platformdirs, rapidfuzz) and TRL with datasets (for the TRL row). About 6 MB, into .whl/
# (git-ignored); carry it to the GPU machine and run tools/gpu_check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-3.12}  # the GPU machine's Python
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
for req in platformdirs rapidfuzz trl==1.16.0 datasets==4.7.0 "dill<0.4.1" "multiprocess<0.70.19"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" --implementation cp \
    "${platforms[@]}" -d .whl "$req"
done
du -sh .whl
ls .whl
