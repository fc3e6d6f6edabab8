#!/usr/bin/env bash
# Every policy loss on the same data, model and budget, on a CPU: SmolLM2-135M-Instruct (bundled), the bundled
# UltraFeedback sample with its GPT-4 score margins (64 train pairs, 32 held-out, 1 epoch, 8 pairs per step), each
# loss with its own shipped config (configs/embedded_policy*.yaml), then `mmpo compare` with paired-bootstrap
# intervals against MMPO. Results: benchmarks/RESULTS.md, "The margin-aware family".
#
#   bash benchmarks/margin_family_cpu.sh            # OUT=outputs/margin_family by default
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/margin_family}
MMPO=.venv/bin/mmpo
mkdir -p "$OUT"
RUNS=()
for LOSS in mmpo dpo gammapo amapo madpo beta_dpo bpo repo; do
  CONFIG=embedded_policy
  EXTRA=()
  case $LOSS in
    mmpo) ;;
    dpo) EXTRA=(loss.loss_type=dpo) ;;
    *) CONFIG=embedded_policy_$LOSS ;;
  esac
  START=$(date +%s)
  $MMPO train policy --config $CONFIG "${EXTRA[@]}" train.output_dir="$OUT/$LOSS" cache_dir="$OUT/cache" \
    train.report_to=[none] > "$OUT/$LOSS.json"
  echo "$LOSS: $(( $(date +%s) - START )) s" >&2
  RUNS+=("$LOSS=$OUT/$LOSS")
done
$MMPO compare "${RUNS[@]}" --out "$OUT/compare" --json > "$OUT/compare.json"
.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['table'])" "$OUT/compare.json"
