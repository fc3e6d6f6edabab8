#!/usr/bin/env bash
# The multi-device path on one GPU, in under 5 minutes: the embedded policy config in bf16 trained for a few steps
# under FSDP2 and under DeepSpeed ZeRO-3 (each through `accelerate launch` with mmpo's shipped configs), each saved
# model reloaded and its eval log-probs compared with training's; then mmpo vs TRL throughput with MFU.
#
#   bash benchmarks/gpu_check.sh              # on a GPU machine with mmpo installed (or run from this checkout)
#   bash benchmarks/gpu_check.sh --prepare    # on a machine with internet/pip access: what a bare GPU box lacks
#
# --prepare puts wheels of mmpo's dependencies that the GPU image may lack (datasets, trl, deepspeed, ...) into
# .gpu_check/wheels and SmolLM2's tokenizer into .gpu_check/smollm2-tokenizer; carry `.gpu_check` to the GPU machine.
# Results: one JSON line per check on stdout and files under ${OUT:-outputs/gpu_check}; the figures go to
# benchmarks/RESULTS.md ("Several processes and sharding").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p .gpu_check/wheels
  .venv/bin/python -m pip download -q --no-deps -d .gpu_check/wheels \
    datasets dill multiprocess trl deepspeed==0.19.8 hjson gguf
  .venv/bin/python benchmarks/gpu_check_model.py --save-tokenizer .gpu_check/smollm2-tokenizer
  du -sh .gpu_check
  exit 0
fi

OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -d .gpu_check/wheels ]; then  # install only what the image lacks, from the carried files, offline
  for pkg in datasets dill multiprocess trl hjson gguf; do
    $PY -c "import $pkg" 2>/dev/null || $PY -m pip install -q --no-index --no-deps .gpu_check/wheels/${pkg}-*.whl || true
  done
  $PY -c "import deepspeed" 2>/dev/null || DS_BUILD_OPS=0 $PY -m pip install -q --no-index --no-deps \
    --no-build-isolation .gpu_check/wheels/deepspeed-*.tar.gz || echo "gpu_check: deepspeed not installed" >&2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
$PY -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print('torch', torch.__version__)" >&2

$PY benchmarks/gpu_check_model.py "$OUT" >&2
MODEL="$OUT/model"
TRAIN=(train policy --config embedded_policy "model=$MODEL" train.max_steps=12 train.bf16=true
       train.logging_steps=4 train.save_steps=6 train.eval_steps=12 train.report_to=[none] "cache_dir=$OUT/cache")

run_sharded() {  # name, accelerate config
  local name=$1 config=$2
  local start=$SECONDS
  if $PY -m accelerate.commands.launch --config_file "$config" --num_processes 1 -m mmpo.cli \
      "${TRAIN[@]}" "train.output_dir=$OUT/$name" > "$OUT/$name.json" 2> "$OUT/$name.log"; then
    echo "{\"check\": \"$name train\", \"seconds\": $((SECONDS - start)), \"ok\": true}"
    $PY benchmarks/gpu_check_reload.py "$OUT/$name" || echo "{\"check\": \"$name reload\", \"ok\": false}"
    # resume from its (sharded, under FSDP) checkpoint-12: 4 more steps
    if $PY -m accelerate.commands.launch --config_file "$config" --num_processes 1 -m mmpo.cli "${TRAIN[@]}" \
        train.max_steps=16 "train.output_dir=$OUT/$name" > "$OUT/$name-resume.json" 2> "$OUT/$name-resume.log" \
        && grep -q "resuming from .*checkpoint-12" "$OUT/$name-resume.log"; then
      echo "{\"check\": \"$name resume\", \"ok\": true}"
    else
      echo "{\"check\": \"$name resume\", \"ok\": false}"
    fi
  else
    echo "{\"check\": \"$name train\", \"ok\": false, \"log_tail\": $(tail -c 1500 "$OUT/$name.log" | $PY -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"
  fi
}

run_sharded fsdp2 configs/accelerate/fsdp.yaml
if $PY -c "import deepspeed" 2>/dev/null; then
  run_sharded zero3 configs/accelerate/deepspeed_zero3.yaml
else
  echo '{"check": "zero3", "ok": null, "why": "deepspeed is not installed"}'
fi

# throughput against TRL with MFU (H200 dense bf16 peak 989 TFLOP/s; about 790 measured on 8192^3 products)
if $PY -c "import trl" 2>/dev/null; then
  $PY benchmarks/throughput_vs_trl.py --model-path "$MODEL" --bf16 --padding-free --pairs 64 --batch-size 8 \
    --max-length 1024 --peak-tflops "${PEAK_TFLOPS:-989}" 2> "$OUT/throughput.log" | tee "$OUT/throughput.txt" | tail -1
else
  echo '{"check": "throughput", "ok": null, "why": "trl is not installed"}'
fi
