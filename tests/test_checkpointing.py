"""What activation checkpointing keeps (train.checkpoint_saves): the same gradients as no checkpointing, and a backward
that re-runs fewer matmuls the more the forward kept, counted op by op."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch
from recorded_ops import RecordedOps
from safetensors.torch import load_file
from test_training import policy_config
from tiny_models import tiny_llama

from mmpo.config import load_config
from mmpo.config.schema import CHECKPOINT_SAVES, TrainSettings
from mmpo.errors import ConfigError
from mmpo.training.arguments import build_training_arguments
from mmpo.training.checkpointing import ATTENTION_OPS, CAST_OPS, MATMUL_OPS, checkpointing_kwargs
from mmpo.training.run import train_from_config

VOCAB, LAYERS = 64, 3
# q, k, v, o, gate, up, down; down_proj's output feeds only the residual add, which keeps nothing, so torch's
# non-reentrant recompute stops before it (early stop): full checkpointing re-runs 6 matmuls of each layer
RECOMPUTED_PER_LAYER = 6


def gradients_and_backward_ops(
    saves: str | None, ops=MATMUL_OPS, bf16: bool = False, compiled: bool = False
) -> tuple[dict[str, torch.Tensor], int]:
    """Gradients of a tiny Llama's loss, and how many of ``ops`` its backward ran; saves=None: no checkpointing."""
    model = tiny_llama(VOCAB, seed=3, hidden_size=32, layers=LAYERS).train()
    model.config.use_cache = False
    if saves is not None:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=checkpointing_kwargs(saves))
    ids = torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = (torch.compile(model) if compiled else model)(input_ids=ids, labels=ids).loss
    with RecordedOps() as recorded:
        loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}, recorded.count(ops)


def test_every_choice_gives_the_gradients_of_no_checkpointing_and_recomputes_fewer_matmuls():
    reference, plain = gradients_and_backward_ops(None)
    backward_matmuls = {}
    for saves in ("inputs", "attention", "matmuls", "half_matmuls"):
        gradients, backward_matmuls[saves] = gradients_and_backward_ops(saves)
        assert gradients.keys() == reference.keys()
        for name in reference:
            torch.testing.assert_close(gradients[name], reference[name], rtol=1e-5, atol=1e-7, msg=f"{saves}: {name}")
    # full checkpointing re-runs 6 forward matmuls of each layer; keeping the matmuls re-runs none; keeping every
    # other one (q, v, gate, down) re-runs the other 3 (k, o, up) of each layer
    assert backward_matmuls["inputs"] == plain + LAYERS * RECOMPUTED_PER_LAYER
    assert backward_matmuls["attention"] == backward_matmuls["inputs"]  # it keeps the attention only
    assert backward_matmuls["matmuls"] == plain
    assert backward_matmuls["half_matmuls"] == plain + LAYERS * 3


def test_keeping_the_attention_spares_its_recomputation():
    """Full checkpointing re-runs each layer's attention forward in the backward; ``attention`` (and the matmul
    choices) keep its output and run none, with the gradients of no checkpointing (checked above)."""
    _, plain = gradients_and_backward_ops(None, ATTENTION_OPS)
    assert plain == 0
    recomputed = {saves: gradients_and_backward_ops(saves, ATTENTION_OPS)[1] for saves in CHECKPOINT_SAVES}
    assert recomputed == {"inputs": LAYERS, "attention": 0, "matmuls": 0, "half_matmuls": 0}


def test_under_bf16_autocast_the_selective_choices_cast_nothing_again():
    """Autocast casts each Linear's fp32 weight and input to bf16; full checkpointing casts them again in the
    recompute, the selective choices keep the casts (the backward's own casts, of gradients, remain)."""
    reference, plain = gradients_and_backward_ops(None, CAST_OPS, bf16=True)
    casts = {}
    for saves in ("inputs", "matmuls", "half_matmuls"):
        gradients, casts[saves] = gradients_and_backward_ops(saves, CAST_OPS, bf16=True)
        for name in reference:
            torch.testing.assert_close(gradients[name], reference[name], msg=f"{saves}: {name}")
    assert casts["inputs"] > plain + LAYERS * RECOMPUTED_PER_LAYER  # at least one weight cast per re-run matmul
    assert casts["matmuls"] == casts["half_matmuls"] == plain


def test_the_choice_reaches_the_trainer_and_survives_pickling(tmp_path):
    """The Trainer saves its arguments (training_args.bin) with every checkpoint, so the policy must pickle."""
    settings = TrainSettings(output_dir=str(tmp_path), gradient_checkpointing=True, checkpoint_saves="half_matmuls")
    arguments = build_training_arguments(settings)
    assert arguments.activation_checkpointing
    context = pickle.loads(pickle.dumps(arguments)).activation_checkpointing_kwargs["context_fn"]
    assert context.args == ("half_matmuls",)
    full = TrainSettings(output_dir=str(tmp_path), gradient_checkpointing=True)
    assert build_training_arguments(full).activation_checkpointing_kwargs is None  # transformers' default


def test_extra_checkpointing_arguments_merge_with_the_choice(tmp_path):
    settings = TrainSettings(
        output_dir=str(tmp_path),
        gradient_checkpointing=True,
        checkpoint_saves="matmuls",
        extra={"activation_checkpointing_kwargs": {"every_n_layers": 2}},
    )
    merged = build_training_arguments(settings).activation_checkpointing_kwargs
    assert merged["every_n_layers"] == 2 and merged["context_fn"].args == ("matmuls",) and not merged["use_reentrant"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.checkpoint_saves=everything"], "train.checkpoint_saves = 'everything'; choose one of"),
        (["train.checkpoint_saves=matmuls"], "it needs train.gradient_checkpointing: true"),
    ],
)
def test_bad_choices_are_refused_naming_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["kind=reward", f"data.train_path={tmp_path}/pairs.jsonl", *overrides])


def test_a_policy_run_trains_to_the_same_weights_whatever_checkpointing_keeps(tmp_path, tiny_llama_dir):
    """Through the CLI's training path (the Trainer enables checkpointing from TrainingArguments and saves them with
    each checkpoint): 3 steps keeping the matmuls end at the weights of 3 steps under full checkpointing."""
    weights = {}
    for saves in ("inputs", "matmuls"):
        out = tmp_path / saves
        train_from_config(
            policy_config(
                tmp_path,
                tiny_llama_dir,
                "train.gradient_checkpointing=true",
                f"train.checkpoint_saves={saves}",
                "train.max_steps=3",
                f"train.output_dir={out}",
            )
        )
        # the arguments the Trainer ran with (this test's own file: a full unpickle, which mmpo itself never does)
        arguments = torch.load(out / "checkpoint-3" / "training_args.bin", weights_only=False)
        kept = (arguments.activation_checkpointing_kwargs or {}).get("context_fn")
        assert arguments.activation_checkpointing and (kept.args[0] if kept else "inputs") == saves
        weights[saves] = load_file(str(out / "model.safetensors"))
    for name, value in weights["inputs"].items():
        torch.testing.assert_close(weights["matmuls"][name], value, rtol=0, atol=1e-6, msg=name)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="inductor needs a C++ compiler")
def test_a_compiled_model_takes_the_selective_choice(tmp_path):
    """torch.compile (the Trainer's torch_compile, set through train.extra) traces the checkpoint's context_fn; it
    refused a callable object there, so the choice is a partial of a function. Gradients as in eager mode, and the
    compiled backward re-runs 3 matmuls fewer per layer than the compiled model under full checkpointing."""
    torch._dynamo.reset()
    reference, _ = gradients_and_backward_ops("inputs")
    _, full_matmuls = gradients_and_backward_ops("inputs", compiled=True)
    torch._dynamo.reset()
    gradients, kept_matmuls = gradients_and_backward_ops("half_matmuls", compiled=True)
    for name in reference:
        torch.testing.assert_close(gradients[name], reference[name], rtol=1e-5, atol=1e-7, msg=name)
    assert kept_matmuls == full_matmuls - LAYERS * 3  # the choice reached the compiled graph, not only eager mode
