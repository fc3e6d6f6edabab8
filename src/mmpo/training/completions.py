"""``train.log_completions=N``: at every evaluation, the policy's own answers to N held-out prompts, logged.

As TRL's ``LogCompletionsCallback``: a table of prompt and completion per evaluation step, in W&B (a
``wandb.Table``) and, here also, in TensorBoard (a text summary) and in ``completions.jsonl`` in the run folder.
Beside each completion is the preference logit h the same evaluation gave that prompt's held-out pair, so a
drifting policy (long, repetitive or empty answers) shows next to its numbers. Generation is greedy, on the main
process, and skipped (with one warning) where the weights are sharded across processes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from mmpo.models.generation import sampling_options
from mmpo.models.unwrap import unwrap_parallel

logger = logging.getLogger("mmpo")
COMPLETIONS_FILE = "completions.jsonl"


def prompt_ids_of(row) -> list[int]:
    """The prompt tokens of a policy feature row: the ids before the first scored (response) token."""
    ids, mask = list(row["chosen_input_ids"]), list(row["chosen_completion_mask"])
    return ids[: mask.index(1)] if 1 in mask else ids


class LogCompletions(TrainerCallback):
    def __init__(self, trainer, count: int, max_new_tokens: int) -> None:
        self.trainer = trainer
        self.max_new_tokens = max_new_tokens
        dataset = trainer.eval_dataset
        self.prompts = [prompt_ids_of(dataset[i]) for i in range(min(count, len(dataset)))]
        self.disabled = False

    def _generate(self, model) -> list[str]:
        tokenizer = self.trainer.processing_class
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        width = max(len(p) for p in self.prompts)
        device = next(model.parameters()).device
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in self.prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in self.prompts], device=device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=self.max_new_tokens,
                    **sampling_options(0.0),
                    pad_token_id=pad,
                )
        finally:
            model.train(was_training)
        return [t.strip() for t in tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        trainer = self.trainer
        if self.disabled or not self.prompts or not state.is_world_process_zero:
            return
        if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
            logger.warning("train.log_completions: the weights are sharded across processes; not generating")
            self.disabled = True
            return
        completions = self._generate(unwrap_parallel(model if model is not None else trainer.model))
        tokenizer = trainer.processing_class
        snapshot = trainer.last_eval
        logits = snapshot.preference_logits if snapshot is not None and snapshot.step == state.global_step else []
        rows = [
            {
                "step": state.global_step,
                "prompt": tokenizer.decode(prompt, skip_special_tokens=True),
                "completion": completion,
                "preference_logit": logits[i] if i < len(logits) else None,
            }
            for i, (prompt, completion) in enumerate(zip(self.prompts, completions, strict=True))
        ]
        with (Path(args.output_dir) / COMPLETIONS_FILE).open("a") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        self._to_tensorboard(rows, state.global_step)
        self._to_wandb(rows, args)

    def _to_tensorboard(self, rows: list[dict], step: int) -> None:
        for callback in self.trainer.callback_handler.callbacks:
            writer = getattr(callback, "tb_writer", None) if isinstance(callback, TensorBoardCallback) else None
            if writer is not None:

                def cell(text) -> str:
                    return str(text).replace("|", "\\|").replace("\n", " ")

                table = ["| prompt | completion | preference logit |", "|---|---|---|"]
                table += [f"| {cell(r['prompt'])} | {cell(r['completion'])} | {r['preference_logit']} |" for r in rows]
                writer.add_text("eval/completions", "\n".join(table), step)
                writer.flush()

    @staticmethod
    def _to_wandb(rows: list[dict], args) -> None:
        if "wandb" not in (args.report_to or []):
            return
        import wandb

        if wandb.run is not None:
            columns = list(rows[0])
            wandb.log({"completions": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])})
