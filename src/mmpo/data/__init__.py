"""Loading, validating, rendering and sampling preference pairs."""

from mmpo.data.io import load_records
from mmpo.data.pairs import PairBuilder, PairStats, pairs_to_dataset
from mmpo.data.prepare import prepare_pairs
from mmpo.data.sampling import sample_pairs

__all__ = ["PairBuilder", "PairStats", "load_records", "pairs_to_dataset", "prepare_pairs", "sample_pairs"]
