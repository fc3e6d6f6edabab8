"""Pushing a finished run folder to the Hugging Face Hub, once everything a user needs is in it.

``Trainer``'s own ``push_to_hub`` pushes at ``save_model``, before mmpo writes the card, the eval metrics and
(for the frozen-encoder head) ``reward_head.json``: the pushed reward model could not be loaded. mmpo pushes
the folder itself, after all of them, without the checkpoints (resume state, not the model) or the run lock.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("mmpo")

LEFT_OUT = ["checkpoint-*", "checkpoint-*/**", ".mmpo.lock", ".mmpo-write-test-*", "runs/**"]


def push_run_folder(folder: Path, repo_id: str, private: bool = True) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` as one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), ignore_patterns=LEFT_OUT, commit_message="mmpo: trained model"
    )
    logger.info("pushed %s to https://huggingface.co/%s", folder, repo_id)
    return str(getattr(commit, "commit_url", commit))
