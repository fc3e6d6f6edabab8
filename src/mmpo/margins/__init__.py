"""Quality margins m and the targets p = sigmoid(gamma*m) they imply, from scores, votes or similarity."""

from mmpo.margins.scores import AUTO_SCORE_COLUMNS, get_field, read_score, resolve_score_columns, score_margin
from mmpo.margins.votes import annotator_votes, log_vote_ratio

__all__ = [
    "AUTO_SCORE_COLUMNS",
    "annotator_votes",
    "get_field",
    "log_vote_ratio",
    "read_score",
    "resolve_score_columns",
    "score_margin",
]
