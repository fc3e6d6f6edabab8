"""Training entry point shared by the CLI, the demo and the benchmarks: config in, trained model out.

Like a torchtune recipe, it is ``setup`` (the kind's Recipe loads tokenizer, pairs, features and model)
then ``train`` (transformers.Trainer), then the final evaluation and the files written beside the model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback

from mmpo.config.saved_run import SavedRun
from mmpo.config.schema import RunConfig
from mmpo.distributed import decide_on_main, main_process_first, process_state
from mmpo.host_memory import keep_freed_memory_for_reuse
from mmpo.metrics.bootstrap import metric_intervals
from mmpo.metrics.calibration import bins_record, pairwise_calibration
from mmpo.metrics.pair_scores import TRAINING_PAIR_SCORES_FILE, pair_key, write_pair_scores
from mmpo.metrics.plots import plot_preference_logit_history, plot_reliability
from mmpo.training.arguments import build_training_arguments
from mmpo.training.completions import LogCompletions
from mmpo.training.model_card import write_model_card
from mmpo.training.output_lock import output_dir_lock
from mmpo.training.preflight import preflight
from mmpo.training.push import push_run_folder
from mmpo.training.recipes import recipe_for
from mmpo.training.resume import SaveRunConfigWithCheckpoints, check_resume_matches

logger = logging.getLogger("mmpo")

HISTORY_PLOT = "preference_logit_history.png"


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, float]
    reliability_png: Path | None
    history_png: Path | None
    eval_preference_logits: list[float]
    eval_margins: list[float]
    world_size: int = 1
    train_pairs_per_rank: tuple[int, ...] = ()


class PreferenceLogitHistoryPlot(TrainerCallback):
    """Writes preference_logit_history.png at the end of training (the paper's overfitting analysis)."""

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_preference_logit_history(state.log_history, Path(args.output_dir) / HISTORY_PLOT)


def train_from_config(cfg: RunConfig, callbacks: list[TrainerCallback] | None = None) -> TrainResult:
    """Check everything, then load data and model, train (resuming if a checkpoint exists), evaluate, and
    save safetensors; the output folder is locked for the whole run."""
    process_state()  # first: everything after reads the right rank and world size
    cfg.validate()  # pure checks on every rank; file checks and decisions on the main process, sent to all
    resume = decide_on_main(lambda: _checked_resume(cfg))
    if cfg.train.reuse_freed_memory:
        keep_freed_memory_for_reuse()  # before the first large tensor: see host_memory.py
    with output_dir_lock(cfg.train.output_dir):
        return _train(cfg, resume, callbacks or [])


def _checked_resume(cfg: RunConfig) -> str | None:
    resume = preflight(cfg)
    if resume:
        check_resume_matches(cfg, resume)  # before any expensive loading
    return resume


def _train(cfg: RunConfig, resume: str | None, callbacks: list[TrainerCallback]) -> TrainResult:
    out = Path(cfg.train.output_dir)
    torch.manual_seed(cfg.train.seed)

    recipe = recipe_for(cfg)
    tokenizer = recipe.load_tokenizer()
    train_pairs, eval_pairs = recipe.load_pairs(tokenizer)
    # the main process builds the on-disk feature tables and embedding caches, the others then open them
    with main_process_first():
        train_features = recipe.featurize(train_pairs, tokenizer)
        eval_features = recipe.featurize(eval_pairs, tokenizer) if eval_pairs else None
    del train_pairs, eval_pairs  # the features are all training needs
    for features in (train_features, eval_features):
        if features is not None:
            recipe.check_features(features)
    setup = recipe.build_model(tokenizer, train_features, eval_features)
    has_eval = setup.evaluation is not None and len(setup.evaluation) > 0
    # TrainingArguments are created after the model is loaded on purpose: under DeepSpeed ZeRO-3 they would
    # make from_pretrained partition the weights at load time, before the reference pass needs them whole.
    trainer = recipe.trainer_class(
        model=setup.model,
        args=build_training_arguments(cfg.train, has_eval=has_eval),
        data_collator=setup.collator,
        train_dataset=setup.train,
        eval_dataset=setup.evaluation if has_eval else None,
        processing_class=tokenizer,
        loss=cfg.loss,
        ece_bins=cfg.ece_bins,
        target_gamma=cfg.eval_target_gamma,
        callbacks=[PreferenceLogitHistoryPlot(), SaveRunConfigWithCheckpoints(cfg), *callbacks],
    )
    if cfg.train.log_completions and has_eval:
        trainer.add_callback(
            LogCompletions(trainer, cfg.train.log_completions, cfg.train.log_completions_max_new_tokens)
        )
    if resume:
        logger.info("resuming from %s", resume)
    if trainer.is_world_process_zero():
        SavedRun.write(cfg, out)
    trainer.train(resume_from_checkpoint=resume)
    save_final_model(trainer, out)
    if hasattr(trainer.model, "save_config") and trainer.is_world_process_zero():
        trainer.model.save_config(out)
    return _finish(cfg, trainer, out, has_eval)


def save_final_model(trainer, out: Path) -> None:
    """The trained weights, whole, in ``out``, loadable with from_pretrained.

    Checkpoints under FSDP stay sharded (SHARDED_STATE_DICT: fast to write, and resume reads them), but for that
    type ``Trainer.save_model`` writes no weights at all; the final save therefore switches to the full state
    dict (accelerate's ``set_state_dict_type``), which save_model does write. Under ZeRO-3,
    ``zero3_save_16bit_model: true`` in configs/accelerate/deepspeed_zero3.yaml makes save_model gather 16-bit
    weights the same way."""
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(out))


def write_eval_pair_scores(dataset, out: Path, margins: list[float], h: list[float]) -> None:
    """The final evaluation pair by pair (``eval_pair_scores.jsonl``), keyed as ``mmpo eval`` keys them."""
    rows = dataset.select_columns(["section", "source_row"]) if hasattr(dataset, "select_columns") else dataset
    keys = [pair_key(row["section"], row["source_row"]) for row in rows]
    write_pair_scores(out / TRAINING_PAIR_SCORES_FILE, keys, margins, h)


def _finish(cfg: RunConfig, trainer, out: Path, has_eval: bool) -> TrainResult:
    """Final evaluation (reusing the last one when it ran at this step), reliability diagram, metrics file."""
    metrics: dict[str, float] = {}
    pairs_per_rank = tuple(gather_object([trainer.train_pairs_seen]))  # every rank takes part in the gather
    reliability = None
    h: list[float] = []
    margins: list[float] = []
    if has_eval:
        if trainer.last_eval is None or trainer.last_eval.step != trainer.state.global_step:
            trainer.evaluate()  # no evaluation at the final step yet (e.g. eval_steps not dividing max_steps)
        final_eval = next(e for e in reversed(trainer.state.log_history) if "eval_loss" in e)
        metrics = {k: v for k, v in final_eval.items() if k.startswith("eval_")}
        h, margins = trainer.last_eval.preference_logits, trainer.last_eval.margins
        if trainer.is_world_process_zero():
            calibration = pairwise_calibration(h, margins, cfg.ece_bins)
            reliability = plot_reliability(
                {cfg.loss.loss_type: calibration}, out / "reliability.png", title=f"{cfg.kind} model, eval pairs"
            )
            (out / "eval_reliability.json").write_text(json.dumps(bins_record(calibration)))
    world = trainer.accelerator.num_processes
    if trainer.is_world_process_zero():
        record: dict = {**metrics, "world_size": world}
        if h:
            intervals = metric_intervals(h, margins, cfg.eval_target_gamma, cfg.ece_bins)
            record["intervals"] = {f"eval_{k}": v.as_list() for k, v in intervals.items()}
            if cfg.kind != "kto":  # KTO's eval rows are samples, two per file row: no pair to key them by
                write_eval_pair_scores(trainer.eval_dataset, out, margins, h)
        (out / "eval_metrics.json").write_text(json.dumps(record, indent=2))
        write_model_card(cfg, out, metrics)
        if cfg.train.push_to_hub:  # last: the folder is complete (weights, card, config, metrics, head config)
            push_run_folder(out, cfg.train.hub_model_id, cfg.train.hub_private)
    history_png = out / HISTORY_PLOT
    history = history_png if history_png.exists() else None
    return TrainResult(out, metrics, reliability, history, h, margins, world, pairs_per_rank)
