"""Translating mmpo's TrainSettings into ``transformers.TrainingArguments``."""

from __future__ import annotations

import torch
from transformers import TrainingArguments

from mmpo.config.schema import TrainSettings
from mmpo.training.checkpointing import checkpointing_kwargs

# TrainingArguments that mmpo sets itself, with the mmpo setting to use instead (train.extra may not set them).
MANAGED_ARGUMENTS = {
    "output_dir": "output_dir",
    "num_train_epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "learning_rate": "learning_rate",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "per_device_eval_batch_size": "per_device_eval_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "lr_scheduler_type": "lr_scheduler_type",
    "warmup_steps": "warmup_ratio",
    "bf16": "bf16",
    "activation_checkpointing": "gradient_checkpointing",
    "gradient_checkpointing": "gradient_checkpointing",  # transformers' older name of the same switch
    "seed": "seed",
    "report_to": "report_to",
    "remove_unused_columns": "(none: mmpo's collators need every column)",
    "label_names": "(none: the margin is the label)",
    # Trainer would push at save_model, before the card, the metrics and a frozen head's reward_head.json exist
    "push_to_hub": "push_to_hub",
    "hub_model_id": "hub_model_id",
    "hub_private_repo": "hub_private",
}


def build_training_arguments(settings: TrainSettings, has_eval: bool = True) -> TrainingArguments:
    """TrainingArguments for ``settings``; without evaluation data there is no evaluation schedule."""
    eval_strategy = ("steps" if settings.eval_steps > 0 else "epoch") if has_eval else "no"
    save_strategy = "steps" if settings.save_steps > 0 else "epoch"
    report_to = [r for r in settings.report_to if r != "none"] or "none"
    kwargs = dict(
        output_dir=settings.output_dir,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        per_device_eval_batch_size=settings.per_device_eval_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        lr_scheduler_type=settings.lr_scheduler_type,
        warmup_steps=settings.warmup_ratio,  # transformers 5: a float < 1 is a fraction of all steps
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        bf16=settings.bf16,
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=settings.gradient_checkpointing,  # transformers 5 name of gradient checkpointing
        activation_checkpointing_kwargs=checkpointing_kwargs(settings.checkpoint_saves),
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        eval_strategy=eval_strategy,
        eval_steps=settings.eval_steps or None,
        save_strategy=save_strategy,
        save_steps=settings.save_steps or None,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=report_to,
        remove_unused_columns=False,
        label_names=["margin"],
        disable_tqdm=settings.disable_tqdm,
        dataloader_num_workers=0,
    )
    own_checkpointing = kwargs["activation_checkpointing_kwargs"] or {}
    kwargs.update(settings.extra)
    if "activation_checkpointing_kwargs" in settings.extra:  # e.g. every_n_layers or offload, beside checkpoint_saves
        kwargs["activation_checkpointing_kwargs"] = {
            **own_checkpointing,
            **settings.extra["activation_checkpointing_kwargs"],
        }
    return TrainingArguments(**kwargs)
