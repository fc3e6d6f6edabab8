"""The model folder benchmarks/gpu_check.sh trains: SmolLM2-135M-Instruct where the bundled copy is installed,
else a SmolLM2-135M-shaped Llama with random weights and SmolLM2's tokenizer (saved beside this checkout by
``--save-tokenizer`` on a machine that has the bundle, since a device machine has neither the bundle nor the hub).
Throughput, MFU and the save/reload checks do not depend on the weights' values.

    python benchmarks/gpu_check_model.py OUT_DIR              # build OUT_DIR/model
    python benchmarks/gpu_check_model.py --save-tokenizer DIR  # here: SmolLM2's tokenizer files into DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

TOKENIZER_DIR = Path(__file__).resolve().parents[1] / ".gpu_check" / "smollm2-tokenizer"


def main() -> None:
    if sys.argv[1] == "--save-tokenizer":
        from mmpo.models import BUNDLED_SMOLLM2, load_tokenizer

        load_tokenizer(BUNDLED_SMOLLM2).save_pretrained(sys.argv[2])
        return
    out = Path(sys.argv[1]) / "model"
    try:
        from mmpo.models import BUNDLED_SMOLLM2, load_causal_lm, load_tokenizer

        model, tokenizer = load_causal_lm(BUNDLED_SMOLLM2), load_tokenizer(BUNDLED_SMOLLM2)
        print("gpu_check model: bundled SmolLM2-135M-Instruct", file=sys.stderr)
    except Exception as exc:  # no bundle here: the same architecture, random weights
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        print(f"gpu_check model: SmolLM2-135M shape, random weights ({type(exc).__name__})", file=sys.stderr)
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            max_position_embeddings=8192,
            rope_theta=100000.0,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(out)


if __name__ == "__main__":
    main()
