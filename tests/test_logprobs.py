"""Chunked LM-head log-probs equal the full-logits path: values and gradients, fp32 and bf16 autocast,
tied embeddings and LoRA; heads it cannot handle fall back to the full logits."""

from __future__ import annotations

import copy

import pytest
import torch
from recorded_ops import RecordedOps
from tiny_models import tiny_llama

from mmpo.features.logprobs import completion_logps, plain_lm_head, sequence_logps


def batch(vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (4, 24), generator=g)
    attention = torch.ones_like(ids)
    attention[2, 18:] = 0  # right padding, as the collators make it
    completion = torch.zeros_like(ids)
    completion[:, 10:] = 1
    completion[2, 18:] = 0
    return ids, attention, completion


def full_path(model, ids, attention, completion):
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits
    if logits.dtype == torch.float64:  # the plain path's float32 cast would hide a real difference
        logits = logits[:, :-1]
        token = torch.gather(logits, 2, ids[:, 1:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
        mask = completion[:, 1:].double()
        return (token * mask).sum(-1), mask.sum(-1)
    return completion_logps(logits, ids, completion)


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("tied", [True, False])
def test_values_and_gradients_equal_the_full_logits_path(tied):
    model = tiny_llama(503, seed=1)
    if not tied:
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone() + 0.01)
    model = model.double()
    other = copy.deepcopy(model)
    ids, attention, completion = batch(503)
    assert plain_lm_head(model) is not None
    chunked, n = sequence_logps(model, ids, attention, completion)
    reference, n_ref = full_path(other, ids, attention, completion)
    torch.testing.assert_close(chunked, reference, rtol=1e-10, atol=1e-10)
    assert n.tolist() == n_ref.tolist()
    weights = torch.tensor([0.3, -1.0, 2.0, 0.5])
    (chunked * weights.double()).sum().backward()
    (reference * weights.double()).sum().backward()
    ours, theirs = grads(model), grads(other)
    assert ours.keys() == theirs.keys() and ("lm_head.weight" in ours) != tied
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-9, atol=1e-11, msg=name)


def test_small_chunks_change_nothing():
    from mmpo.features.logprobs import chunked_completion_logps

    model = tiny_llama(503, seed=2)
    ids, attention, completion = batch(503, seed=3)
    hidden = model(input_ids=ids, attention_mask=attention, output_hidden_states=True).hidden_states[-1]
    a, _ = chunked_completion_logps(hidden, model.lm_head.weight, ids, completion, chunk=7)
    b, _ = chunked_completion_logps(hidden, model.lm_head.weight, ids, completion, chunk=4096)
    torch.testing.assert_close(a, b)


def test_bf16_autocast_matches_the_full_path_under_the_same_autocast():
    model = tiny_llama(503, seed=4)
    other = copy.deepcopy(model)
    ids, attention, completion = batch(503, seed=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked, _ = sequence_logps(model, ids, attention, completion)
        reference, _ = full_path(other, ids, attention, completion)
    torch.testing.assert_close(chunked, reference.float(), rtol=2e-2, atol=5e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        chunked.sum().backward()
        reference.sum().backward()
    g_ours, g_ref = model.lm_head.weight.grad, other.lm_head.weight.grad
    assert torch.nn.functional.cosine_similarity(g_ours.flatten(), g_ref.flatten(), dim=0) > 0.99
    # the hidden states' gradient (the head's bf16 backward matmul) reaches the layers below alike
    g_ours, g_ref = (m.model.layers[-1].mlp.down_proj.weight.grad for m in (model, other))
    assert torch.nn.functional.cosine_similarity(g_ours.flatten(), g_ref.flatten(), dim=0) > 0.99


def test_lora_adapters_get_the_same_gradients():
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(503, seed=6).double()
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(copy.deepcopy(base), config)
    other = get_peft_model(copy.deepcopy(base), config)
    other.load_state_dict(model.state_dict())
    assert plain_lm_head(model) is not None  # all-linear leaves the LM head alone
    ids, attention, completion = batch(503, seed=7)
    chunked, _ = sequence_logps(model, ids, attention, completion)
    reference, _ = full_path(other, ids, attention, completion)
    torch.testing.assert_close(chunked, reference, rtol=1e-10, atol=1e-10)
    chunked.sum().backward()
    reference.sum().backward()
    ours, theirs = grads(model), grads(other)
    assert ours and all("lora_" in name for name in ours)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-9, atol=1e-11, msg=name)


def test_heads_it_cannot_handle_use_the_full_logits():
    model = tiny_llama(503, seed=8)
    model.lm_head = torch.nn.Linear(model.config.hidden_size, 503, bias=True)
    assert plain_lm_head(model) is None
    ids, attention, completion = batch(503)
    torch.testing.assert_close(
        sequence_logps(model, ids, attention, completion)[0], full_path(model, ids, attention, completion)[0]
    )


def packed_features(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    features = []
    for k in range(3):
        lengths = (5 + 3 * k, 9 - k, 4 + 2 * k)  # prompt, chosen, rejected: different lengths, so padding differs
        prompt = torch.randint(0, 503, (lengths[0],), generator=g).tolist()
        sides = {}
        for side, n in (("chosen", lengths[1]), ("rejected", lengths[2])):
            response = torch.randint(0, 503, (n,), generator=g).tolist()
            sides[f"{side}_input_ids"] = prompt + response
            sides[f"{side}_completion_mask"] = [0] * len(prompt) + [1] * n
        features.append({**sides, "margin": 1.0, "source_row": k, "section": ""})
    return features


@pytest.mark.parametrize("attention", ["sdpa dense block-causal mask", "SDPA per packed sequence"])
def test_padding_free_batches_equal_padded_ones(attention):
    """Packed rows (position ids restarting per sequence, no attention mask) give the padded batch's log-probs
    and gradients, under transformers' dense block-causal mask and under mmpo's per-sequence SDPA alike."""
    from mmpo.features.collators import PackedPolicyCollator, PolicyCollator
    from mmpo.models.varlen_attention import VARLEN_SDPA, prepare_packed_attention

    model = tiny_llama(503, seed=9).double()
    other = copy.deepcopy(model)
    if attention == "SDPA per packed sequence":
        assert prepare_packed_attention(other) == attention
        assert other.config._attn_implementation == VARLEN_SDPA
    features = packed_features(10)
    padded = PolicyCollator(0)(features)
    packed = PackedPolicyCollator(0)(features)
    assert packed["input_ids"].shape == (
        1,
        sum(len(f[f"{s}_input_ids"]) for f in features for s in ("chosen", "rejected")),
    )
    a, n_a = sequence_logps(model, padded["input_ids"], padded["attention_mask"], padded["completion_mask"])
    b, n_b = sequence_logps(
        other,
        packed["input_ids"],
        None,
        packed["completion_mask"],
        position_ids=packed["position_ids"],
        sequence_index=packed["sequence_index"],
    )
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert n_a.tolist() == n_b.tolist()
    a.sum().backward()
    b.sum().backward()
    for (name, p), q in zip(model.named_parameters(), other.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-7, atol=1e-9, msg=name)


def test_per_sequence_sdpa_splits_the_row_where_positions_restart(monkeypatch):
    """Without the split, the packed row is one causal sequence and later sequences see earlier ones: the
    log-probs change, so the equality above depends on the split being made."""
    import itertools

    import mmpo.models.varlen_attention as varlen
    from mmpo.features.collators import PackedPolicyCollator

    model = tiny_llama(503, seed=9).double()
    varlen.prepare_packed_attention(model)
    features = packed_features(10)
    packed = PackedPolicyCollator(0)(features)
    lengths = [len(f[f"{side}_input_ids"]) for side in ("chosen", "rejected") for f in features]
    assert varlen.packed_sequence_bounds(packed["position_ids"]) == [
        0,
        *itertools.accumulate(lengths),
    ]
    ids, positions, owners = packed["input_ids"], packed["position_ids"], packed["sequence_index"]
    args = (ids, None, packed["completion_mask"], True, positions, owners)
    split = sequence_logps(model, *args)[0]
    monkeypatch.setattr(varlen, "packed_sequence_bounds", lambda position_ids: None)
    unsplit = sequence_logps(model, *args)[0]
    assert torch.equal(split[:1], unsplit[:1])  # the first sequence sees nothing before it either way
    assert not torch.allclose(split[1:], unsplit[1:], atol=1e-3)


def test_per_sequence_sdpa_backward_writes_each_gradient_once():
    """The backward of the per-sequence split assembles each of query, key and value's gradients in one
    concatenation; one slice per sequence would zero a row-sized gradient per sequence and add them all up (with 8
    sequences: 24 row-sized fills and additions per layer). Gradients equal SDPA on each sequence alone."""
    from mmpo.models.varlen_attention import varlen_sdpa_forward

    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    g = torch.Generator().manual_seed(4)
    inputs = [torch.randn(1, heads, 20, 8, generator=g, requires_grad=True) for heads in (4, 2, 2)]
    bounds = torch.tensor([0, 3, 9, 14, 20], dtype=torch.int32)
    out, _ = varlen_sdpa_forward(module, *inputs, None, cu_seq_lens_q=bounds, cu_seq_lens_k=bounds)
    upstream = torch.randn(out.shape, generator=g)
    with RecordedOps() as ops:
        out.backward(upstream)
    assert ops.count_named("slice_backward") == 0
    assert ops.count_named("cat") == 3  # query, key and value: one each
    for start, end in ((0, 3), (3, 9), (9, 14), (14, 20)):
        alone = [x.detach()[:, :, start:end].clone().requires_grad_() for x in inputs]
        expanded = [alone[0], alone[1].repeat_interleave(2, 1), alone[2].repeat_interleave(2, 1)]
        reference = torch.nn.functional.scaled_dot_product_attention(*expanded, is_causal=True).transpose(1, 2)
        reference.backward(upstream[:, start:end])
        for x, y in zip(inputs, alone, strict=True):
            torch.testing.assert_close(x.grad[:, :, start:end], y.grad)


def test_models_that_per_sequence_sdpa_would_get_wrong_keep_their_attention():
    from mmpo.models.varlen_attention import prepare_packed_attention, supports_varlen_sdpa

    model = tiny_llama(503, seed=9)
    model.config.sliding_window = 4  # a plain causal SDPA per sequence would ignore the window
    assert not supports_varlen_sdpa(model)
    assert prepare_packed_attention(model) is None
    assert model.config._attn_implementation == "sdpa"
    eager = tiny_llama(503, seed=9)
    eager.set_attn_implementation("eager")
    assert prepare_packed_attention(eager) is None
    qwen_style = tiny_llama(503, seed=9)
    qwen_style.config.sliding_window, qwen_style.config.use_sliding_window = 4, False  # a window that is off
    assert prepare_packed_attention(qwen_style) == "SDPA per packed sequence"


def test_per_sequence_sdpa_takes_the_bounds_given_without_position_ids():
    """With cu_seq_lens given (as mmpo passes them), the split does not need the model to hand its position ids
    to the attention layers: each sequence's output is SDPA on that sequence alone."""
    from mmpo.models.varlen_attention import varlen_sdpa_forward

    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    g = torch.Generator().manual_seed(3)
    query, key, value = (torch.randn(1, heads, 9, 8, generator=g) for heads in (4, 2, 2))
    bounds = torch.tensor([0, 4, 9], dtype=torch.int32)
    packed, _ = varlen_sdpa_forward(module, query, key, value, None, cu_seq_lens_q=bounds, cu_seq_lens_k=bounds)
    for start, end in ((0, 4), (4, 9)):
        alone = torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end].repeat_interleave(2, 1),
            value[:, :, start:end].repeat_interleave(2, 1),
            is_causal=True,
        ).transpose(1, 2)
        torch.testing.assert_close(packed[:, start:end], alone)


def test_policy_scoring_packs_its_batches_and_agrees_with_padded_ones():
    from mmpo.features.scoring import policy_preference_logits
    from mmpo.models.varlen_attention import VARLEN_SDPA

    features = packed_features(10)
    policy, reference = tiny_llama(503, seed=9).double(), tiny_llama(503, seed=11).double()
    padded = policy_preference_logits(policy, reference, features, 0, beta=0.1, padding_free=False)
    assert policy.config._attn_implementation == "sdpa"
    packed = policy_preference_logits(policy, reference, features, 0, beta=0.1)
    assert policy.config._attn_implementation == VARLEN_SDPA  # the packed path ran
    torch.testing.assert_close(packed, padded, rtol=1e-9, atol=1e-9)
    assert padded.abs().min() > 1e-6  # real preference logits, not zeros


def test_vocabulary_tiles_change_nothing(monkeypatch):
    """A vocabulary split into tiles (log-normalisers combined with logaddexp, gradients accumulated per tile, the
    last tile partial) gives the one-tile values and gradients."""
    import mmpo.features.logprobs as logprobs

    model = tiny_llama(503, seed=8).double()
    ids, attention, completion = batch(503, seed=9)
    hidden = model(input_ids=ids, attention_mask=attention, output_hidden_states=True).hidden_states[-1].detach()
    weight = model.lm_head.weight.detach()

    def run(tile_elements: int):
        monkeypatch.setattr(logprobs, "TILE_ELEMENTS", tile_elements)
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        values, _ = logprobs.chunked_completion_logps(h, w, ids, completion, chunk=7)
        (values * torch.linspace(-1, 2, 4, dtype=torch.float64)).sum().backward()
        return values, h.grad, w.grad

    assert logprobs.vocabulary_tile(503, 7) == 503
    whole = run(1 << 26)
    monkeypatch.setattr(logprobs, "TILE_ELEMENTS", 700)
    assert logprobs.vocabulary_tile(503, 7) == 100  # 6 tiles, the last of 3 columns
    tiled = run(700)
    for a, b in zip(tiled, whole, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_no_logits_tile_of_a_49k_vocabulary_exceeds_32_mb():
    """At SmolLM2's vocabulary and a 1,024-token chunk, forward and backward never hold a tensor of more than
    TILE_ELEMENTS logits (8,192 columns: 32 MB in fp32); a whole-vocabulary tile would be 200 MB."""
    import mmpo.features.logprobs as logprobs

    g = torch.Generator().manual_seed(5)
    hidden = torch.randn(1024, 4, generator=g, requires_grad=True)
    weight = torch.randn(49152, 4, generator=g, requires_grad=True)
    targets = torch.randint(0, 49152, (1024,), generator=g)
    with RecordedOps() as ops:
        logprobs.ChunkedTokenLogps.apply(hidden, weight, targets, logprobs.CHUNK_TOKENS).sum().backward()
    assert logprobs.vocabulary_tile(49152, 1024) == 8192
    assert ops.largest_output == logprobs.TILE_ELEMENTS == 1024 * 8192


def test_vocabulary_tiles_under_bf16_autocast_and_bad_targets(monkeypatch):
    """Tiles under bf16 autocast give the one-tile numbers to bf16 rounding; a target id outside the head's rows is
    refused (a clamp would score it silently)."""
    import mmpo.features.logprobs as logprobs

    torch.manual_seed(0)
    hidden, weight = torch.randn(40, 16), torch.randn(503, 16) * 0.25
    targets = torch.randint(0, 503, (40,))

    def run(tile_elements: int):
        monkeypatch.setattr(logprobs, "TILE_ELEMENTS", tile_elements)
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            values = logprobs.ChunkedTokenLogps.apply(h, w, targets, 8)
        values.sum().backward()
        return values, h.grad, w.grad

    for a, b in zip(run(8 * 100), run(1 << 26), strict=True):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)
    with pytest.raises(ValueError, match=r"\[0, 503\)"):
        logprobs.ChunkedTokenLogps.apply(hidden, weight, torch.full((40,), 503), 8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_heads_in_place_log_normaliser_equals_torch_logsumexp(dtype):
    """The head's forward overwrites each fresh logits tile to get its log-normaliser (no tile-sized temporary);
    it must give torch.logsumexp's numbers, large logits and rows with one dominant entry included."""
    from mmpo.features.logprobs import _logsumexp_in_place

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 3000, generator=g, dtype=dtype) * 8
    logits[0] += 1e4
    logits[1, 7] = 500.0
    expected = torch.logsumexp(logits, -1)
    torch.testing.assert_close(_logsumexp_in_place(logits.clone()), expected, rtol=2 * torch.finfo(dtype).eps, atol=0)


def test_the_log_normaliser_of_a_bf16_tile_is_taken_in_fp32_blocks_equal_to_the_upcast_tile():
    """Under bf16 the head's forward upcasts its logits tile UPCAST_ROWS rows at a time (never the whole tile):
    the log-normalisers must be those of torch.logsumexp on the whole upcast tile, the last partial block too."""
    from mmpo.features.logprobs import UPCAST_ROWS, _logsumexp_upcast

    g = torch.Generator().manual_seed(0)
    rows = 3 * UPCAST_ROWS + 5  # a partial last block
    logits = (torch.randn(rows, 3000, generator=g) * 8).to(torch.bfloat16)
    logits[1, 7] = 500.0
    expected = torch.logsumexp(logits.float(), -1)
    torch.testing.assert_close(_logsumexp_upcast(logits, torch.float32), expected, rtol=2e-7, atol=0)
    assert _logsumexp_upcast(logits, torch.float32).dtype == torch.float32


def test_the_softmax_gradient_of_a_bf16_tile_is_taken_in_fp32_blocks_equal_to_the_upcast_tile():
    """Under bf16 the head's backward turns each logits tile into exp(z - lse) * scale in place, UPCAST_ROWS rows at a
    time in fp32: the numbers must be those of the whole upcast tile rounded once to bf16, the last partial block
    too, and the tile itself is what comes back (no tile-sized copy)."""
    from mmpo.features.logprobs import UPCAST_ROWS, _softmax_gradient_upcast

    g = torch.Generator().manual_seed(1)
    rows = 2 * UPCAST_ROWS + 3
    logits = (torch.randn(rows, 3000, generator=g) * 8).to(torch.bfloat16)
    log_norm = torch.logsumexp(logits.float(), -1, keepdim=True)
    scale = torch.randn(rows, 1, generator=g)
    expected = (logits.float() - log_norm).exp() * scale
    out = _softmax_gradient_upcast(logits, log_norm, scale)
    assert out.data_ptr() == logits.data_ptr() and out.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected.to(torch.bfloat16), rtol=0, atol=0)


def test_no_scored_tokens_give_a_zero_head_gradient():
    """The head's weight gradient is written by the first chunk's products (no zero-filling pass); with no scored
    token there is no first chunk, and the gradient must still be zeros, not uninitialised memory."""
    from mmpo.features.logprobs import ChunkedTokenLogps

    weight = torch.randn(50, 8, requires_grad=True)
    hidden = torch.randn(0, 8, requires_grad=True)
    ChunkedTokenLogps.apply(hidden, weight, torch.zeros(0, dtype=torch.long), 4).sum().backward()
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def record_rotary_dtypes(model, seen: list[torch.dtype]) -> None:
    """Append to ``seen`` the dtype of the cos (and sin) that the model's first decoder layer receives, each call."""
    model.model.layers[0].register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["position_embeddings"][0].dtype), with_kwargs=True
    )


def test_under_bf16_autocast_rotary_reaches_the_layers_in_bf16_and_outside_it_unchanged():
    """The layers get cos and sin in the autocast dtype (as a bf16-loaded model computes them), so the query and key
    stay bf16 into the attention; without autocast, cos and sin keep the model's dtype."""
    model = tiny_llama(503, seed=4)
    ids, attention, completion = batch(503, seed=5)
    seen: list[torch.dtype] = []
    record_rotary_dtypes(model, seen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast, _ = sequence_logps(model, ids, attention, completion)
    plain, _ = sequence_logps(model, ids, attention, completion)
    assert seen == [torch.bfloat16, torch.float32]
    torch.testing.assert_close(under_autocast, plain, rtol=2e-2, atol=5e-2)  # bf16 rounding, not another model
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, attention_mask=attention)  # the hook stays: any forward under autocast, recomputation too
    assert seen[-1] == torch.bfloat16
    in_bf16 = tiny_llama(503, seed=4).to(torch.bfloat16)
    record_rotary_dtypes(in_bf16, seen)
    sequence_logps(in_bf16, ids, attention, completion)
    assert seen[-1] == torch.bfloat16


def test_rotary_kept_in_fp32_on_purpose_stays_fp32_under_autocast():
    """OLMo 2 returns fp32 cos and sin whatever its weights' dtype (loaded in bf16 too): the hook asks the rotary
    embedding what it does with bf16 hidden states and leaves such a model's rotary alone."""
    from transformers import Olmo2Config, Olmo2ForCausalLM

    from mmpo.models.rotary_dtype import rotary_in_compute_dtype

    torch.manual_seed(0)
    config = Olmo2Config(
        vocab_size=503, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    model = Olmo2ForCausalLM(config)
    seen: list[torch.dtype] = []
    record_rotary_dtypes(model, seen)
    ids, attention, completion = batch(503, seed=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sequence_logps(model, ids, attention, completion)
    llama = tiny_llama(503, seed=4)
    record_rotary_dtypes(llama, seen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sequence_logps(llama, ids, attention, completion)
    assert seen == [torch.float32, torch.bfloat16]  # OLMo 2 as it is; Llama's follows its input, so bf16
    assert rotary_in_compute_dtype(model) == 1
