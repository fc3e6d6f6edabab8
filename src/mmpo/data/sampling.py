"""SHP-style pair sampling (as in the MMPO paper's data preparation).

SHP gives many responses per post, so the raw pair set is dominated by a few prompts. The paper keeps
at most 5 pairs per prompt, samples its training set uniformly across the margins (``stratified_by_quartile``:
an equal share from each margin quartile) and studies subsets by margin quartile; long pairs are filtered by
token length at tokenisation time (``overlong: drop``). Sampling is seeded so a run is reproducible.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from mmpo.errors import DataError
from mmpo.records import Pair


def margin_quartile_edges(margins: Sequence[float]) -> tuple[float, float, float]:
    """The 25/50/75% points (nearest-rank) of the margins."""
    ordered = sorted(margins)
    if not ordered:
        raise DataError("no pairs to split into quartiles")
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.25), pick(0.5), pick(0.75)


def margin_quartile(margin: float, edges: tuple[float, float, float]) -> int:
    """1..4: which quartile a margin falls in (ties at an edge go to the lower quartile)."""
    return 1 + sum(margin > edge for edge in edges)


def sample_pairs(
    pairs: list[Pair],
    max_pairs_per_prompt: int = 0,
    quartiles: Sequence[int] = (),
    seed: int = 0,
    min_margin: float | None = None,
) -> list[Pair]:
    """Keep pairs with margin > ``min_margin`` (the paper's DPO_{>k}; None = all), then those whose margin
    lies in ``quartiles`` (empty = all), then at most ``max_pairs_per_prompt`` per prompt (0 = no limit),
    chosen at random with ``seed``. Order of the survivors is preserved."""
    bad = [q for q in quartiles if q not in (1, 2, 3, 4)]
    if bad:
        raise DataError(f"margin quartiles must be in 1..4, got {bad}")
    kept = pairs
    if min_margin is not None:
        kept = [p for p in kept if p.margin > min_margin]
        if not kept:
            raise DataError(
                f"data.min_margin = {min_margin:g} keeps no pair (largest margin {max(p.margin for p in pairs):g})"
            )
    if quartiles:
        edges = margin_quartile_edges([p.margin for p in kept])
        kept = [p for p in kept if margin_quartile(p.margin, edges) in set(quartiles)]
    if max_pairs_per_prompt > 0:
        rng = random.Random(seed)
        by_prompt: dict[str, list[int]] = defaultdict(list)
        for index, pair in enumerate(kept):
            by_prompt[pair.prompt].append(index)
        chosen: set[int] = set()
        for indices in by_prompt.values():
            chosen.update(
                indices if len(indices) <= max_pairs_per_prompt else rng.sample(indices, max_pairs_per_prompt)
            )
        kept = [pair for index, pair in enumerate(kept) if index in chosen]
    return kept


def stratified_by_quartile(pairs: list[Pair], count: int, seed: int = 0) -> list[Pair]:
    """``count`` pairs (0: four times the smallest quartile) drawn equally from the four margin quartiles, so
    that small and large margins are equally represented, as the paper samples SHP. A quartile with too few
    pairs gives all it has and the others fill the rest. Seeded; the survivors keep their file order."""
    if not pairs:
        raise DataError("no pairs to sample by margin quartile")
    edges = margin_quartile_edges([p.margin for p in pairs])
    groups: dict[int, list[int]] = {q: [] for q in (1, 2, 3, 4)}
    for index, pair in enumerate(pairs):
        groups[margin_quartile(pair.margin, edges)].append(index)
    present = [q for q in groups if groups[q]]
    target = min(count or 4 * min(len(groups[q]) for q in present), len(pairs))
    rng = random.Random(seed)
    for indices in groups.values():
        rng.shuffle(indices)
    share = {q: 0 for q in present}
    while sum(share.values()) < target:  # round-robin: equal shares, the quartiles with pairs left fill the rest
        for q in present:
            if share[q] < len(groups[q]) and sum(share.values()) < target:
                share[q] += 1
    chosen = sorted(i for q in present for i in groups[q][: share[q]])
    return [pairs[i] for i in chosen]
