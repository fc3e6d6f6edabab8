"""mmpo's log-prob and loss path on a sharded model, one rank of a 2-process torchrun on CPU (gloo).

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 tests/sharded_worker.py {fsdp2,zero3} OUT

Each rank scores its half of a batch of pairs (padded and padding-free) through the chunked LM head of a model
sharded by torch's FSDP2 (``fully_shard`` on a CPU mesh) or DeepSpeed ZeRO-3, and backpropagates the MMPO loss.
Rank 0 then scores the whole batch on an unsharded copy of the same model and writes both gradients, and what it
saw of the wrapping, to OUT/result.json for the test to compare. Under FSDP2 the trained weights are also saved
as a full state dict (as accelerate's FULL_STATE_DICT does) and reloaded with ``from_pretrained``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import tiny_llama  # noqa: E402

from mmpo.features.collators import PackedPolicyCollator, PolicyCollator  # noqa: E402
from mmpo.features.logprobs import batch_sequence_logps, plain_lm_head  # noqa: E402
from mmpo.losses import LossConfig, policy_loss  # noqa: E402
from mmpo.models.unwrap import unwrap_to_transformers_model  # noqa: E402
from mmpo.models.varlen_attention import packed_attention_kwargs, prepare_packed_attention  # noqa: E402

VOCAB = 96
PAIRS = 8  # 4 per rank


def features() -> list[dict]:
    generator = torch.Generator().manual_seed(7)
    rows = []
    for i in range(PAIRS):
        prompt = torch.randint(3, VOCAB, (3 + i % 3,), generator=generator).tolist()
        chosen = torch.randint(3, VOCAB, (4 + i % 2,), generator=generator).tolist()
        rejected = torch.randint(3, VOCAB, (2 + i % 4,), generator=generator).tolist()
        rows.append(
            {
                "chosen_input_ids": prompt + chosen,
                "chosen_completion_mask": [0] * len(prompt) + [1] * len(chosen),
                "rejected_input_ids": prompt + rejected,
                "rejected_completion_mask": [0] * len(prompt) + [1] * len(rejected),
                "margin": 0.5 + i % 3,
                "ref_chosen_logps": -20.0 + i,
                "ref_rejected_logps": -21.0 + 0.5 * i,
            }
        )
    return rows


def loss_of(model: torch.nn.Module, rows: list[dict], packed: bool) -> torch.Tensor:
    """The policy trainer's path: sequence log-probs of [chosen; rejected], then the MMPO loss, mean over pairs."""
    batch = (PackedPolicyCollator if packed else PolicyCollator)(0)(rows)
    logps, _ = batch_sequence_logps(model, batch)
    chosen, rejected = logps.chunk(2)
    config = LossConfig(loss_type="mmpo", beta=0.5, gamma=1.0)
    return policy_loss(
        config, chosen, rejected, batch["ref_chosen_logps"], batch["ref_rejected_logps"], batch["margin"]
    )


def reference_gradients(packed: bool) -> dict[str, list[float]]:
    model = tiny_llama(VOCAB)
    model.config._attn_implementation = "sdpa"
    prepare_packed_attention(model)
    loss_of(model, features(), packed).mean().backward()
    return {name: p.grad.flatten().tolist() for name, p in model.named_parameters()}


def fsdp2(out: Path, packed: bool) -> dict:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = tiny_llama(VOCAB)
    model.config._attn_implementation = "sdpa"
    mesh = init_device_mesh("cpu", (world,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    attention = prepare_packed_attention(model)
    head = plain_lm_head(model)
    share = features()[rank * PAIRS // world : (rank + 1) * PAIRS // world]
    loss_of(model, share, packed).mean().backward()  # FSDP2 averages the gradients over the ranks
    grads = {name: p.grad.full_tensor().flatten().tolist() for name, p in model.named_parameters()}
    seen = {
        "world_size": world,
        "head_weight_type": type(head.weight).__name__ if head is not None else None,
        "attention": attention,
        "gradients": grads,
    }
    with torch.no_grad():  # one SGD step, then the whole model as accelerate's FULL_STATE_DICT saves it
        for p in model.parameters():
            p -= 0.1 * p.grad
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    with torch.no_grad():  # every rank: a forward of a sharded model is a collective
        seen["logps_before_save"] = batch_sequence_logps(model, PolicyCollator(0)(features()))[0].tolist()
    if rank == 0:
        unsharded = tiny_llama(VOCAB)
        unsharded.load_state_dict(full)
        unsharded.save_pretrained(out / "saved")
    return seen


def zero3(out: Path, packed: bool) -> dict:
    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = tiny_llama(VOCAB)
    model.config._attn_implementation = "sdpa"
    config = {
        "train_micro_batch_size_per_gpu": PAIRS // world,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 3},
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}},
    }
    engine, *_ = deepspeed.initialize(model=model, config=config, model_parameters=model.parameters())
    head = plain_lm_head(engine)
    seen = {
        "world_size": world,
        "unwrapped": type(unwrap_to_transformers_model(engine)).__name__,
        "head_weight_shape_outside_forward": list(head.weight.shape) if head is not None else None,
        "attention": prepare_packed_attention(engine),
        "packed_kwargs": sorted(packed_attention_kwargs(engine, torch.tensor([[0, 1, 2, 0, 1]]))),
    }
    share = features()[rank * PAIRS // world : (rank + 1) * PAIRS // world]
    engine.backward(loss_of(engine, share, packed).mean())
    from deepspeed.utils import safe_get_full_grad

    seen["gradients"] = {name: safe_get_full_grad(p).flatten().tolist() for name, p in engine.module.named_parameters()}
    return seen


def main() -> None:
    mode, out, layout = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    packed = layout == "packed"
    seen = {"fsdp2": fsdp2, "zero3": zero3}[mode](out, packed)
    if dist.get_rank() == 0:
        seen["reference_gradients"] = reference_gradients(packed)
        (out / "result.json").write_text(json.dumps(seen))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
