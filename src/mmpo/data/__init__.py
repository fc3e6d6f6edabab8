"""Loading, validating, rendering and sampling preference pairs."""

from mmpo.data.io import load_records
from mmpo.data.pairs import PairBuilder, PairStats
from mmpo.data.prepare import prepare_pairs
from mmpo.data.sampling import sample_pairs

__all__ = ["PairBuilder", "PairStats", "load_records", "prepare_pairs", "sample_pairs"]
