#!/usr/bin/env bash
# Every policy loss on the same data, model and budget, on a CPU: SmolLM2-135M-Instruct (bundled), the bundled
# UltraFeedback sample with its GPT-4 score margins (64 train pairs, 32 held-out, 1 epoch, 8 pairs per step), each
# loss with its own shipped config (configs/embedded_policy*.yaml), then `mmpo compare` with paired-bootstrap
# intervals against MMPO. Results: benchmarks/RESULTS.md, "The margin-aware family". A run whose report is there
# already is not trained again (re-running the script after a stop finishes the rest). ODPO takes log(margin), so its
# run drops the tied pairs (data.on_tie=drop): the one run whose data differ.
#
#   bash benchmarks/margin_family_cpu.sh            # OUT=outputs/margin_family by default
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/margin_family}
MMPO=.venv/bin/mmpo
mkdir -p "$OUT"
RUNS=()
for LOSS in mmpo dpo cdpo robust ipo hinge simpo odpo gammapo amapo madpo beta_dpo bpo repo; do
  RUNS+=("$LOSS=$OUT/$LOSS")
  [ -s "$OUT/$LOSS.json" ] && continue
  CONFIG=embedded_policy
  EXTRA=()
  case $LOSS in
    mmpo) ;;
    dpo | ipo | hinge) EXTRA=(loss.loss_type=$LOSS) ;;
    cdpo | robust) EXTRA=(loss.loss_type=$LOSS loss.label_smoothing=0.1) ;;
    simpo) EXTRA=(loss.loss_type=simpo loss.beta=2.0 loss.simpo_gamma=0.5) ;;
    odpo) EXTRA=(loss.loss_type=odpo data.on_tie=drop) ;;
    *) CONFIG=embedded_policy_$LOSS ;;
  esac
  START=$(date +%s)
  $MMPO train policy --config $CONFIG "${EXTRA[@]}" train.output_dir="$OUT/$LOSS" cache_dir="$OUT/cache" \
    train.report_to=[none] > "$OUT/$LOSS.json"
  echo "$LOSS: $(( $(date +%s) - START )) s" >&2
done
$MMPO compare "${RUNS[@]}" --out "$OUT/compare" --json > "$OUT/compare.json"
.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['table'])" "$OUT/compare.json"
