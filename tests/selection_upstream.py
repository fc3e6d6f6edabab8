"""The data-selection methods' reference code, copied here so that mmpo's scores are tested against it on the
same vectors. Each block names its repository, commit and file; changes to run it without the rest of its script
are commented. Not part of the package."""

# ruff: noqa
# fmt: off

from __future__ import annotations

import numpy as np


# --- Hesse73/Alignment-Potential-Metric @ 123ece76b728cb17d260745f7353c8cacb42e4f1, metric_selection.py
# (`ds` is any mapping of the two columns; `args.logp_weight` becomes an argument) --------------------------------
def get_top_score_idx(ds, select_by='rm-logp', k=100, logp_weight=1.0):
    if select_by == 'rand': return np.random.choice(len(ds), k, replace=False)
    rm_data = np.array(ds['rm_margin'])
    logp_data = np.array(ds['logp_margin_norm_abs'])
    rm_mean, rm_std = rm_data.mean(), rm_data.std()
    logp_mean, logp_std = logp_data.mean(), logp_data.std()
    rm_data_zscore = (rm_data - rm_mean)/rm_std
    logp_data_zscore = (logp_data - logp_mean)/logp_std
    if select_by == 'rm-logp':
        score_data = rm_data_zscore - logp_data_zscore
    elif select_by == 'rm-xlogp':
        score_data = rm_data_zscore - logp_weight * logp_data_zscore
    elif select_by == 'rm_margin':
        score_data = rm_data_zscore  # NOTE: use zscore for compatibility with rm-logp
    elif select_by == 'logp_margin_norm_abs':
        score_data = -logp_data_zscore  # NOTE: negative logp margin is better
    topk_idx = np.argsort(score_data)[-k:]
    return topk_idx, score_data  # (the score is returned too, for the test)


# --- AliEdalat/preference-data-selection @ 550d116ad64d05aef94e72de82278a64f404ae72, m_sampler.py
# (Sampling_ensemble: margin1 is the implicit margin, margin2 the external one; returns the scores and the kept
# indices instead of `ds.select(indices)`) --------------------------------------------------------------------------
def sampling_ensemble(margin1, margin2, strategy, Num):
    margin1 = np.nan_to_num(np.array(margin1, dtype=np.float64), nan=0)
    margin2 = np.nan_to_num(np.array(margin2, dtype=np.float64), nan=0)
    max_margin1 = np.max(margin1)
    x = int(max_margin1/2)
    while True:
        samples_above = np.sum((margin1 > x) & (margin1 <= max_margin1))
        if samples_above < (max_margin1 - x) or samples_above < 30 or x > max_margin1:
            break
        x += 1
    max_margin2 = np.max(margin2)
    y = int(max_margin2/1.5)
    while True:
        samples_above = np.sum((margin2 > y) & (margin2 <= max_margin2))
        if samples_above < (max_margin2 - y) or samples_above < 30 or y > max_margin2:
            break
        y += 1

    if strategy == 'add':
        margin = margin1 + margin2
    elif strategy == 'mul':
        margin1 = np.clip(margin1, -2, x)
        margin2 = np.clip(margin2, -2, y)
        margin1 -= -2
        margin2 -= -2
        margin1 /= max(margin1)
        margin2 /= max(margin2)
        margin = margin1 * margin2 / ((margin1 * margin2) + (1 - margin1) * (1 - margin2))

    indices = np.argsort(margin)[-Num:]
    return margin, indices
