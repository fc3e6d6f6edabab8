"""Reload a model that a sharded run saved and score its eval pairs as training last did.

Reads the run's mmpo_config.yaml, loads ``output_dir`` with from_pretrained (the whole weights FSDP's full state
dict or ZeRO-3's 16-bit gather wrote), featurises the eval pairs the same way, takes the reference log-probs from
the run's cache, and compares the mean preference logit and accuracy with ``eval_metrics.json``. A save that wrote
no weights, or the wrong ones, fails here. Prints one JSON line.

    python benchmarks/gpu_check_reload.py RUN_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def main() -> None:
    from mmpo.config.saved_run import SavedRun
    from mmpo.features.collators import PolicyCollator
    from mmpo.features.logprobs import batch_sequence_logps
    from mmpo.models import load_causal_lm
    from mmpo.training.recipes import recipe_for

    run = Path(sys.argv[1])
    cfg = SavedRun.read(run).config
    recipe = recipe_for(cfg)
    tokenizer = recipe.load_tokenizer()
    _, eval_pairs = recipe.load_pairs(tokenizer)
    features = recipe.featurize(eval_pairs, tokenizer)
    reference = load_causal_lm(cfg.model, recipe.load_options()).to("cuda")
    features = recipe.with_reference(reference, tokenizer.pad_token_id, "eval", features)  # from the run's cache
    del reference
    model = load_causal_lm(str(run), recipe.load_options()).to("cuda").eval()
    collate = PolicyCollator(tokenizer.pad_token_id)
    h = []
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.train.bf16):
        for start in range(0, len(features), 8):
            batch = collate([features[i] for i in range(start, min(start + 8, len(features)))])
            logps, _ = batch_sequence_logps(model, {k: v.to("cuda") for k, v in batch.items()})
            chosen, rejected = logps.double().chunk(2)
            ref = (batch["ref_chosen_logps"] - batch["ref_rejected_logps"]).double().to("cuda")
            h.append(cfg.loss.beta * (chosen - rejected - ref))
    h = torch.cat(h)
    trained = json.loads((run / "eval_metrics.json").read_text())
    result = {
        "run": str(run),
        "reloaded_mean_preference_logit": h.mean().item(),
        "trained_mean_preference_logit": trained["eval_mean_preference_logit"],
        "reloaded_accuracy": (h > 0).double().mean().item(),
        "trained_accuracy": trained["eval_accuracy"],
        "world_size": trained.get("world_size"),
    }
    gap = abs(result["reloaded_mean_preference_logit"] - result["trained_mean_preference_logit"])
    result["same_model"] = gap <= 0.02 * max(1.0, abs(result["trained_mean_preference_logit"]))
    print(json.dumps(result))
    sys.exit(0 if result["same_model"] else 1)


if __name__ == "__main__":
    main()
