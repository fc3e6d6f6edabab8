"""Sequence log-probabilities of completions under a causal LM.

The plain way (``completion_logps``) takes the model's full logits, a (N, T, vocabulary) tensor: for a
49k vocabulary and 1,024 tokens that is 200 MB per sequence in fp32, kept for backward, in training, the
reference pass and evaluation alike. ``sequence_logps`` never builds it: for the length of one forward
pass the LM head's ``forward`` is replaced by one that keeps only the completion positions of the hidden
states it receives and runs them through the head weight in chunks (log-sum-exp per chunk) inside a custom
autograd function that recomputes each chunk's logits in backward. Memory for the head is then chunk x
vocabulary, whatever the sequence length. It is exact to fp32 rounding against the plain path, under bf16
autocast too, with LoRA and with tied embeddings; models whose head is not a plain bias-free Linear
(soft-capped or scaled logits, LoRA on the head) use the plain path.

Why inside the head's forward: under FSDP and DeepSpeed ZeRO-3 the head weight is whole only while its module
runs (the wrappers gather it in the module's forward hooks, and again in its backward hooks); read from
outside, it is a shard. Running the chunk loop where the model would compute its logits lets the sharded
weight be used as the whole one, so memory stays bounded exactly where models are largest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from mmpo.models.rotary_dtype import rotary_in_compute_dtype
from mmpo.models.unwrap import unwrap_parallel
from mmpo.models.varlen_attention import packed_attention_kwargs

CHUNK_TOKENS = 1024
# logits per tile at most: 32 MB in fp32 (a 1,024-token chunk by 8,192 columns). A tile is written by its matmul and
# read again by the log-normaliser (and in backward by the gradient's element-wise steps); a tile this size is
# allocated again from the block the previous tile freed, where a whole-vocabulary one (200 MB for SmolLM2) often
# needed fresh pages: in a training profile its matmul ran at half the speed of the same matmul into reused memory.
TILE_ELEMENTS = 1 << 23


def completion_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (sum of log p(token) over completion tokens, number of completion tokens), each (N,).

    Token t is predicted by logits at t-1. Computed as logit - logsumexp in float32, which avoids
    materialising a full (N, T, V) log_softmax copy and stays exact under bf16 autocast."""
    logits = logits[:, :-1].float()
    targets = input_ids[:, 1:]
    mask = completion_mask[:, 1:].to(logits.dtype)
    token_logps = torch.gather(logits, 2, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (token_logps * mask).sum(-1), mask.sum(-1)


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


def _matmul_dtype(hidden: torch.Tensor, autocast: tuple[bool, torch.dtype]) -> torch.dtype:
    """The dtype the head's matmuls run in: the autocast dtype where autocast is on (bf16 on AMX or tensor cores),
    else the hidden states' own (fp32, or fp64 in the exactness tests)."""
    enabled, dtype = autocast
    return dtype if enabled and hidden.dtype == torch.float32 else hidden.dtype


def _logsumexp_in_place(logits: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(logits), -1)) as torch.logsumexp computes it (max + log(sum(exp(z - max)))), overwriting
    ``logits``: torch.logsumexp allocates a tile-sized temporary for z - max, which on a CPU costs about as much as
    the arithmetic (a 1,024 x 49,152 tile: 95 ms against 135 ms). Equal to torch.logsumexp within 2 ulp (a test)."""
    row_max = logits.amax(-1, keepdim=True)
    return logits.sub_(row_max).exp_().sum(-1).log_().add_(row_max.squeeze(-1))


UPCAST_ROWS = 16  # rows of a low-precision tile upcast at a time: 16 x 8,192 fp32 logits (512 KB) stay in cache


def _upcast_row_blocks(logits: torch.Tensor, dtype: torch.dtype) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, those rows of ``logits`` in ``dtype``), UPCAST_ROWS rows at a time, each copied into the same small
    buffer (the last block a partial one): a low-precision (bf16) tile is worked on in fp32 without ever upcasting
    the whole tile, which would write a fresh fp32 copy of it and read it again."""
    block = torch.empty(min(UPCAST_ROWS, logits.shape[0]), logits.shape[1], dtype=dtype, device=logits.device)
    for start in range(0, logits.shape[0], UPCAST_ROWS):
        rows = slice(start, min(start + UPCAST_ROWS, logits.shape[0]))
        yield rows, block[: rows.stop - start].copy_(logits[rows])


def _logsumexp_upcast(logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """torch.logsumexp(logits.to(dtype), -1) for a low-precision (bf16) tile, a few rows at a time in ``dtype``: the
    whole tile upcast at once cost more than the tile's matmul on a CPU (a 1,024 x 49,152 tile: 253 ms against 68 ms
    in a profile); blocks that stay in cache took 18 ms. The same values as torch.logsumexp of the upcast tile (a
    test)."""
    out = torch.empty(logits.shape[0], dtype=dtype, device=logits.device)
    for rows, block in _upcast_row_blocks(logits, dtype):
        out[rows] = _logsumexp_in_place(block)
    return out


def _add_product(buffer: torch.Tensor, a: torch.Tensor, b: torch.Tensor, first: bool) -> None:
    """buffer += a @ b, or buffer = a @ b for the ``first`` product, so gradient buffers need no zero-filling pass
    (the head weight's is vocabulary x hidden: 113 MB for SmolLM2). Where the dtypes agree (fp32) the matmul writes
    or accumulates into the buffer itself, without a product-sized temporary; a low-precision (bf16) product is
    computed first and then copied or added to the fp32 buffer."""
    if a.dtype == buffer.dtype:
        if first:
            torch.mm(a, b, out=buffer)
        else:
            buffer.addmm_(a, b)
    elif first:
        buffer.copy_(a @ b)
    else:
        buffer += a @ b


def _softmax_gradient_upcast(logits: torch.Tensor, log_norm: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """exp(logits - log_norm) * scale for a low-precision (bf16) tile, in place in the tile, computed in fp32 a few
    rows at a time (``_upcast_row_blocks``) rather than in a fresh fp32 copy of the tile with three passes over it
    and a cast back. ``log_norm`` and ``scale`` are fp32 (rows, 1)."""
    for rows, block in _upcast_row_blocks(logits, log_norm.dtype):
        logits[rows] = block.sub_(log_norm[rows]).exp_().mul_(scale[rows])
    return logits


def vocabulary_tile(vocabulary: int, chunk: int) -> int:
    """Columns of the logits per tile: the whole vocabulary while a tile has at most TILE_ELEMENTS logits, else
    slices (SmolLM2's 49k at 1,024 tokens: 6 tiles of 8,192), so no vocabulary needs a tile of more than 32 MB."""
    return max(1, min(vocabulary, TILE_ELEMENTS // max(1, chunk)))


class ChunkedTokenLogps(torch.autograd.Function):
    """log softmax(h @ W^T)[target] for M selected positions, ``chunk`` positions at a time and, for large
    vocabularies, a vocabulary tile at a time (log-normalisers combined with logaddexp).

    Forward keeps the log-normaliser of every position, so backward recomputes each tile's logits once and turns them
    into the logits gradient in place (exp(z - lse) * -g, plus g at the target), without a second reduction. The
    matmuls run in the compute dtype (bf16 under autocast: the fast path on AMX and tensor cores) and everything else
    in fp32: logits are upcast before the log-normaliser, gradients are accumulated in fp32 buffers across tiles.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
        ctx.chunk = chunk
        ctx.compute = torch.promote_types(hidden.dtype, torch.float32)  # fp32, or fp64 for a double model
        ctx.matmul = _matmul_dtype(hidden, _autocast_state(hidden.device.type))
        vocabulary = weight.shape[0]
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocabulary):
            raise ValueError(f"target token ids must lie in [0, {vocabulary}) (the LM head's rows)")
        tile = vocabulary_tile(vocabulary, chunk)
        out = torch.empty(hidden.shape[0], dtype=ctx.compute, device=hidden.device)
        log_norm = torch.empty_like(out)
        cast_weight = weight.to(ctx.matmul)  # once, not once per chunk (a no-op in fp32)
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk].to(ctx.matmul)
            target = targets[start : start + chunk]
            lse = picked = None
            for low in range(0, vocabulary, tile):
                logits = h @ cast_weight[low : low + tile].t()
                local = target - low
                inside = (local >= 0) & (local < logits.shape[1])
                value = logits.gather(1, local.clamp(0, logits.shape[1] - 1)[:, None]).squeeze(1).to(ctx.compute)
                picked = torch.where(inside, value, picked if picked is not None else torch.zeros_like(value))
                if logits.dtype == ctx.compute:  # the tile is fresh and read no more: 1.4x torch.logsumexp
                    tile_lse = _logsumexp_in_place(logits)
                else:  # bf16 logits: upcast a few rows at a time, never the whole tile
                    tile_lse = _logsumexp_upcast(logits, ctx.compute)
                lse = tile_lse if lse is None else torch.logaddexp(lse, tile_lse)
            log_norm[start : start + chunk] = lse
            out[start : start + chunk] = picked - lse
        ctx.save_for_backward(hidden, weight, targets, log_norm)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        hidden, weight, targets, log_norm = ctx.saved_tensors
        compute, matmul = ctx.compute, ctx.matmul
        vocabulary = weight.shape[0]
        tile = vocabulary_tile(vocabulary, ctx.chunk)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:  # written by the first chunk's products, so only empty when nothing is scored
            empty = torch.zeros if hidden.shape[0] == 0 else torch.empty
            grad_weight = empty(weight.shape, dtype=compute, device=weight.device)
        cast_weight = weight.to(matmul)
        for start in range(0, hidden.shape[0], ctx.chunk):
            h = hidden[start : start + ctx.chunk].to(matmul)
            g = grad_out[start : start + ctx.chunk].to(compute)[:, None]
            lse = log_norm[start : start + ctx.chunk, None]
            target = targets[start : start + ctx.chunk]
            rows = torch.arange(h.shape[0], device=h.device)
            chunk_grad = torch.empty(h.shape, dtype=compute, device=h.device) if grad_hidden is not None else None
            for low in range(0, vocabulary, tile):
                w = cast_weight[low : low + tile]
                # d logp[target] / d logits = onehot(target) - softmax(logits), times g
                # exp(z - lse) with the log-normaliser saved in forward, in place in the tile, in fp32
                if matmul == compute:
                    d_logits = (h @ w.t()).sub_(lse).exp_().mul_(-g)
                else:  # bf16 tile: a few rows at a time through an fp32 buffer that stays in cache
                    d_logits = _softmax_gradient_upcast(h @ w.t(), lse, -g)
                local = target - low
                inside = (local >= 0) & (local < d_logits.shape[1])
                d_logits[rows[inside], local[inside]] += g[inside, 0].to(matmul)
                if chunk_grad is not None:
                    _add_product(chunk_grad, d_logits, w, first=low == 0)
                if grad_weight is not None:
                    _add_product(grad_weight[low : low + tile], d_logits.t(), h, first=start == 0)
            if grad_hidden is not None:
                grad_hidden[start : start + ctx.chunk] = chunk_grad.to(hidden.dtype)
        return grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None, None, None


def _scored_positions(
    input_ids: torch.Tensor, completion_mask: torch.Tensor, sequence_index: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(mask over positions 0..T-2 whose next token is scored, the sequence each belongs to, sequences).

    Padded batches: one sequence per row. Packed rows (padding-free): ``sequence_index`` (T,) says which
    sequence each token belongs to, and a token is only scored from a position of its own sequence."""
    mask = completion_mask[:, 1:].bool()
    if sequence_index is None:
        return mask, mask.nonzero()[:, 0], input_ids.shape[0]
    mask = mask & (sequence_index[1:] == sequence_index[:-1])[None, :]
    return mask, sequence_index[1:][None, :].expand_as(mask)[mask], int(sequence_index.max()) + 1


def _sum_per_sequence(
    token_logps: torch.Tensor, owners: torch.Tensor, sequences: int
) -> tuple[torch.Tensor, torch.Tensor]:
    sums = torch.zeros(sequences, dtype=token_logps.dtype, device=token_logps.device).index_add(0, owners, token_logps)
    counts = torch.zeros(sequences, dtype=torch.float32, device=token_logps.device)
    counts.index_add_(0, owners, torch.ones_like(owners, dtype=torch.float32))
    return sums, counts


LOGP_REDUCTIONS = ("sum", "avg", "norm")


@dataclass(frozen=True)
class LogpStats:
    """Per-sequence statistics of the completion tokens' log-probs, in float64: the sum (the DPO log-prob),
    the token count and the sum of squares. Every reduction reward-bench offers follows from these three, and
    float64 keeps a difference of two sums near -1,000 exact to far below a reward's rounding."""

    total: torch.Tensor
    tokens: torch.Tensor
    squares: torch.Tensor

    def reduce(self, how: str) -> torch.Tensor:
        """'sum' (log pi), 'avg' (per token) or 'norm' (minus the L2 norm of the token log-probs), as
        ``DPOInference.get_batch_logps`` in reward-bench."""
        if how == "sum":
            return self.total
        if how == "avg":
            return self.total / self.tokens
        if how == "norm":
            return -self.squares.sqrt()
        raise ValueError(f"unknown log-prob reduction {how!r}; expected one of {LOGP_REDUCTIONS}")

    @staticmethod
    def cat(parts: list[LogpStats]) -> LogpStats:
        return LogpStats(*(torch.cat([getattr(p, f) for p in parts]) for f in ("total", "tokens", "squares")))


def logp_stats(token_logps: torch.Tensor, owners: torch.Tensor, sequences: int) -> LogpStats:
    values = token_logps.detach().double()
    zeros = torch.zeros(sequences, dtype=torch.float64, device=values.device)
    return LogpStats(
        zeros.index_add(0, owners, values),
        zeros.index_add(0, owners, torch.ones_like(values)),
        zeros.index_add(0, owners, values * values),
    )


def chunked_completion_logps(
    hidden: torch.Tensor,
    head_weight: torch.Tensor,
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    chunk: int = CHUNK_TOKENS,
    sequence_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """completion_logps from the last hidden states (N, T, H) and the LM head weight (V, H)."""
    mask, owners, sequences = _scored_positions(input_ids, completion_mask, sequence_index)
    token_logps = ChunkedTokenLogps.apply(hidden[:, :-1][mask], head_weight, input_ids[:, 1:][mask], chunk)
    return _sum_per_sequence(token_logps, owners, sequences)


def plain_lm_head(model: torch.nn.Module) -> torch.nn.Linear | None:
    """The model's LM head when chunked log-probs are exact for it, else None (use the full logits)."""
    inner = unwrap_parallel(model)  # DDP, FSDP1 and DeepSpeed engines; a peft model keeps its own head lookup
    get_head = getattr(inner, "get_output_embeddings", None)
    head = get_head() if get_head is not None else None
    if type(head) is not torch.nn.Linear or head.bias is not None:
        return None  # no head, LoRA on the head, or a bias
    config = getattr(inner, "config", None)
    text_config = config.get_text_config() if config is not None and hasattr(config, "get_text_config") else config
    if getattr(text_config, "final_logit_softcapping", None) or getattr(text_config, "logit_scale", None):
        return None
    return head


@contextmanager
def head_returns_token_logps(head: torch.nn.Linear, mask: torch.Tensor, targets: torch.Tensor) -> Iterator[None]:
    """While the block runs, ``head(hidden)`` returns the log-probs (M,) of ``targets`` at the positions ``mask``
    selects of hidden[:, :-1], computed chunk by chunk with the weight as the head's own forward sees it (whole
    under FSDP / ZeRO-3). The head's previous forward (a class method or an instance hook) comes back after."""
    own = head.__dict__.get("forward")

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        return ChunkedTokenLogps.apply(hidden[:, :-1][mask], head.weight, targets, CHUNK_TOKENS)

    head.forward = forward
    try:
        yield
    finally:
        if own is None:
            del head.forward
        else:
            head.forward = own


def completion_token_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    completion_mask: torch.Tensor,
    chunked: bool = True,
    position_ids: torch.Tensor | None = None,
    sequence_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(log p of every scored completion token (M,), the sequence each belongs to (M,), number of sequences),
    through the chunked LM head when the model allows it, else from the full logits.

    Padding-free batches (one packed row, see PackedPolicyCollator) pass ``position_ids`` restarting at 0 for
    every sequence and ``sequence_index``, and no attention mask: transformers then attends within each
    sequence only (block-causal; FlashAttention varlen on GPU). The KV cache must stay off for that."""
    rotary_in_compute_dtype(model)  # under autocast: bf16 rotary, in the policy, its recomputation and the reference
    inputs = {"input_ids": input_ids, "use_cache": False}
    if sequence_index is None:
        inputs["attention_mask"] = attention_mask
    else:
        inputs["position_ids"] = position_ids
        inputs.update(packed_attention_kwargs(model, position_ids))
    mask, owners, sequences = _scored_positions(input_ids, completion_mask, sequence_index)
    head = plain_lm_head(model) if chunked else None
    if head is not None:
        with head_returns_token_logps(head, mask, input_ids[:, 1:][mask]):
            token_logps = model(**inputs, logits_to_keep=0).logits  # every position reaches the head, which keeps M
        return token_logps, owners, sequences
    logits = model(**inputs).logits[:, :-1][mask]
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    token_logps = logits.gather(1, input_ids[:, 1:][mask][:, None]).squeeze(1) - torch.logsumexp(logits, -1)
    return token_logps, owners, sequences


def sequence_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    completion_mask: torch.Tensor,
    chunked: bool = True,
    position_ids: torch.Tensor | None = None,
    sequence_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed completion log-probs, completion token counts), one per sequence (see completion_token_logps)."""
    token_logps, owners, sequences = completion_token_logps(
        model, input_ids, attention_mask, completion_mask, chunked, position_ids, sequence_index
    )
    return _sum_per_sequence(token_logps, owners, sequences)


def _batch_arguments(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
    """A collated batch, padded (PolicyCollator) or packed (PackedPolicyCollator), as completion_token_logps's
    arguments."""
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch.get("attention_mask"),
        "completion_mask": batch["completion_mask"],
        "position_ids": batch.get("position_ids"),
        "sequence_index": batch.get("sequence_index"),
    }


def batch_logp_stats(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> LogpStats:
    """LogpStats (float64) of a collated batch."""
    return logp_stats(*completion_token_logps(model, **_batch_arguments(batch)))


def batch_sequence_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """sequence_logps of a collated batch."""
    return sequence_logps(model, **_batch_arguments(batch))
