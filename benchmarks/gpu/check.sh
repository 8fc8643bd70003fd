#!/usr/bin/env bash
# One-command GPU check (issue 18 item 6): prints one JSON object on stdout, logs on stderr.
#   bash benchmarks/gpu/check.sh            # ~5-8 min on one H200
# Sections (each reports its own error instead of failing the whole check):
#   vllm   - vLLM CUDA engine on a locally built random-weight model of Qwen2-VL-2B's shape:
#            captions/s and output tokens/s of the raw engine and of the captioning pipeline on 512
#            synthetic images, and their ratio;
#   mamba  - mamba-ssm selective-scan kernel vs the project's exact PyTorch scan: max abs diff
#            (padded batch included) and speed;
#   nam    - AMP (bf16) training step of the NAM + SDM recipe at ViT-B/16, 384x128: samples/s.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
exec "$PY" benchmarks/gpu/check.py "$@"
