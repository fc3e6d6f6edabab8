"""A reward head on a frozen sentence encoder: the CPU-sized reward model of the embedded default.

r(x, y) = MLP([e(x), e(y), e(x) * e(y)]) with e the (cached) mean-pooled sentence embedding. Freezing
the encoder makes an epoch over 1,000 pairs take seconds on a CPU, which is what lets the demo and the
3-seed benchmark compare MMPO with hard labels over several epochs, where hard labels overfit and
become over-confident. Full fine-tuning of any sequence-classification model is the other
``reward_head`` option and uses the same trainer and losses.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from mmpo.errors import ConfigError

HEAD_CONFIG = "reward_head.json"


class FrozenEncoderRewardHead(nn.Module):
    def __init__(self, embedding_dim: int, hidden_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.config_dict = {"embedding_dim": embedding_dim, "hidden_dim": hidden_dim, "dropout": dropout}
        # no bias on the output: every pairwise loss sees r_w - r_l, where it cancels, so its gradient is zero up to
        # rounding and Adam would turn that rounding noise into steps of the learning rate's size (as in
        # transformers' sequence-classification heads, whose `score` layer has no bias either)
        self.mlp = nn.Sequential(
            nn.Linear(3 * embedding_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, 1, bias=False),
        )

    def forward(self, prompt_embedding: torch.Tensor, response_embedding: torch.Tensor, **_: torch.Tensor):
        features = torch.cat([prompt_embedding, response_embedding, prompt_embedding * response_embedding], dim=-1)
        return SequenceClassifierOutput(logits=self.mlp(features))

    def save_config(self, folder: str | Path) -> None:
        Path(folder, HEAD_CONFIG).write_text(json.dumps(self.config_dict))


def load_reward_head(folder: str | Path) -> FrozenEncoderRewardHead:
    folder = Path(folder)
    head = FrozenEncoderRewardHead(**json.loads((folder / HEAD_CONFIG).read_text()))
    weights_file = folder / "model.safetensors"
    if not weights_file.is_file():
        raise ConfigError(f"{folder}: the reward head's weights file model.safetensors is missing")
    try:
        weights = load_file(str(weights_file))
    except SafetensorError as exc:
        reason = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise ConfigError(
            f"model {str(folder)!r}: {weights_file} is damaged ({reason}); copy it again or retrain"
        ) from None
    weights.pop("mlp.3.bias", None)  # heads saved before the output bias was removed: it shifted every reward alike
    head.load_state_dict(weights)
    return head.eval()
