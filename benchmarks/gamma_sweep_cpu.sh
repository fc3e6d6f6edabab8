#!/usr/bin/env bash
# Choosing gamma on a CPU with mmpo's own commands: the embedded reward model (frozen MiniLM, MLP head, the bundled
# UltraFeedback sample) swept over gamma with 3 seeds, at 10 and 20 epochs (the paper's overfitting regime), then MMPO
# at the selected gamma against hard-label BT, pair by pair with paired-bootstrap intervals, on the bundled eval
# pairs and on a RewardBench-format local file (LLMBar Chat Hard subsets and Anthropic-HH helpful pairs as the
# anthropic_helpful Prior Set, from ../shared/data). Results: benchmarks/RESULTS.md, "Choosing gamma".
#
#   bash benchmarks/gamma_sweep_cpu.sh            # OUT=outputs/gamma_sweep by default
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gamma_sweep}
MMPO=.venv/bin/mmpo
mkdir -p "$OUT"
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "tests")
from helpers import prior_rows, rewardbench_rows
shared, out = Path("..") / "shared" / "data", Path(sys.argv[1])
(out / "rewardbench_cpu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rewardbench_rows(shared, 134)))
(out / "prior_sets_cpu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in prior_rows(shared, 300)))
PY
for EPOCHS in 10 20; do
  SWEEP=$OUT/epochs$EPOCHS
  $MMPO sweep reward --config embedded_reward loss.gamma=0.3,1,3,inf seed=1,2,3 train.num_train_epochs=$EPOCHS \
    --out "$SWEEP" > "$SWEEP.json"
  $MMPO sweep reward --config embedded_reward loss.loss_type=bt seed=1,2,3 train.num_train_epochs=$EPOCHS \
    --out "$SWEEP-bt" > "$SWEEP-bt.json"
  GAMMA=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['selected']['setting']['loss.gamma'])" "$SWEEP.json")
  for SEED in 1 2 3; do
    for RUN in "$SWEEP/loss.gamma=${GAMMA}__train.seed=$SEED" "$SWEEP-bt/train.seed=$SEED"; do
      $MMPO eval --model "$RUN" --benchmark rewardbench --data "$OUT/rewardbench_cpu.jsonl" \
        --prior-sets "$OUT/prior_sets_cpu.jsonl" --out "$RUN/rewardbench" on_empty=drop > /dev/null
    done
    $MMPO compare "MMPO-gamma$GAMMA=$SWEEP/loss.gamma=${GAMMA}__train.seed=$SEED,$SWEEP/loss.gamma=${GAMMA}__train.seed=$SEED/rewardbench/report.json" \
      "BT=$SWEEP-bt/train.seed=$SEED,$SWEEP-bt/train.seed=$SEED/rewardbench/report.json" \
      --sweep "$SWEEP" --out "$SWEEP/compare-seed$SEED" --json > "$SWEEP/compare-seed$SEED.json"
  done
  echo "== $EPOCHS epochs: selected gamma $GAMMA"
  cat "$SWEEP/sweep.md"
  cat "$SWEEP-bt/sweep.md"
  for SEED in 1 2 3; do .venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['table'])" "$SWEEP/compare-seed$SEED.json"; done
done
