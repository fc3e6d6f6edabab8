"""The ``mmpo`` command line: train, eval, margins (and margins annotate), bon, serve, generate, judge,
compare, demo.

stdout carries only results (strict JSON for the JSON commands); logs and progress go to stderr. Every
bad input or setting is one line on stderr and exit status 2, before any heavy work; any other error is
one line and status 1, with the traceback behind ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Any

from mmpo import strict_json
from mmpo.errors import ConfigError, MMPOError
from mmpo.results_output import library_output_to_stderr, results_stream


def print_json(value: Any) -> None:
    print(strict_json.dumps(value), file=results_stream(), flush=True)


class OneLineParser(argparse.ArgumentParser):
    """argparse errors as one line on stderr and exit status 2 (argparse would print the usage first)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _positive_float(text: str) -> float:
    """gamma-like flags: a number > 0, or inf."""
    try:
        value = math.inf if text.strip().lower() in ("inf", "+inf", "infinity") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or inf (got {text})")
    return value


def _whole_number(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {'> 0' if low == 1 else f'>= {low}'} (got {text})")
    return value


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text})")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535 (got {text})")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _cmd_train(args: argparse.Namespace) -> int:
    from mmpo.commands.train import TrainParams, run_train

    summary, _ = run_train(TrainParams(args.kind, args.config, args.overrides))
    from mmpo.distributed import is_main_process

    if is_main_process():  # under torchrun / `accelerate launch`, report once
        print_json(summary)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmpo.commands.eval import EvalParams, run_eval
    from mmpo.evaluation.pair_eval import ScoringSettings

    if args.prior_sets and args.benchmark != "rewardbench":
        raise ConfigError("--prior-sets needs --benchmark rewardbench")
    tokenization = args.scoring or ("rewardbench" if args.benchmark == "rewardbench" else "mmpo")
    if args.ref_free_type and not args.reference_free:
        raise ConfigError("--ref-free-type needs --reference-free")
    scoring = ScoringSettings(
        model=args.model,
        kind=args.kind,
        ref_model=args.ref_model,
        beta=args.beta,
        reference_free=args.reference_free,
        cache_dir=args.cache_dir,
        max_length=args.max_length,
        max_prompt_length=args.max_prompt_length,
        batch_size=args.batch_size,
        tokenization=tokenization,
        reference_free_reduction=args.ref_free_type or ("avg" if tokenization == "rewardbench" else "sum"),
    )
    scoring.lengths()  # checked before anything loads
    params = EvalParams(
        scoring, args.data, args.data_overrides, args.gamma, args.bins, args.out, args.benchmark, args.prior_sets
    )
    print_json(run_eval(params))
    return 0


def _cmd_margins(args: argparse.Namespace) -> int:
    from mmpo.commands.margins import MarginsParams, run_margins

    print_json(run_margins(MarginsParams(args.data, args.data_overrides, args.gamma, args.out)))
    return 0


def _cmd_bon(args: argparse.Namespace) -> int:
    from mmpo.commands.bon import BonParams, run_bon

    params = BonParams(
        args.reward_model,
        args.data,
        args.prompt_column,
        args.responses_column,
        args.scores_column,
        args.max_length,
        args.batch_size,
        args.out,
    )
    print_json(run_bon(params))
    return 0


def _cmd_annotate(args: argparse.Namespace) -> int:
    from mmpo.commands.annotate import AnnotateParams, run_annotate

    params = AnnotateParams(
        args.data, args.out, _judge_settings(args), args.data_overrides, args.prompt_template, args.limit
    )
    print_json(run_annotate(params))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from mmpo.commands.serve import ServeParams, run_serve

    run_serve(ServeParams(args.model, args.host, args.port, args.max_new_tokens))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from mmpo.commands.generate import GenerateParams, run_generate

    params = GenerateParams(
        model=args.model,
        out=args.out,
        questions=args.questions,
        model_id=args.model_id,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        batch_size=args.batch_size,
        limit=args.limit,
        backend=args.backend,
        question_begin=args.question_begin,
        question_end=args.question_end,
        num_choices=args.num_choices,
        best_of=args.best_of,
        reward_model=args.reward_model,
    )
    print_json(run_generate(params))
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    from mmpo.commands.judge import JudgeParams, run_judge

    params = JudgeParams(
        answers=args.answers,
        judge=_judge_settings(args),
        out=args.out,
        questions=args.questions,
        references=args.references,
        judge_prompts=args.judge_prompts,
        mode=args.mode,
        baseline=args.baseline,
    )
    summary, failed = run_judge(params)
    print_json(summary)
    if failed:
        shown = "; ".join(failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        logging.getLogger("mmpo").error(
            "%d judge requests failed and were not recorded (run the same command again to retry them): %s",
            len(failed),
            shown,
        )
        return 1
    return 0


def _judge_settings(args: argparse.Namespace):
    from mmpo.evaluation.judges import JudgeSettings

    return JudgeSettings(
        args.judge,
        args.base_url,
        args.api_key_env,
        args.concurrency,
        args.max_new_tokens,
        args.batch_size,
        args.retries,
    )


def _add_judge_options(parser: argparse.ArgumentParser, max_new_tokens: int) -> None:
    parser.add_argument("--judge", required=True, help="openai:<model>, hf:<path or hub id> or rm:<path or hub id>")
    parser.add_argument("--base-url", default="https://api.openai.com/v1", help="openai judges: the endpoint")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai judges: env variable with the key")
    parser.add_argument("--concurrency", type=_positive_int, default=4, help="openai judges: parallel requests")
    parser.add_argument("--max-new-tokens", type=_positive_int, default=max_new_tokens)
    parser.add_argument("--batch-size", type=_positive_int, default=4, help="hf judges: conversations per batch")
    parser.add_argument(
        "--retries", type=_non_negative_int, default=6, help="openai judges: retries on 429/5xx, with backoff"
    )


def _cmd_compare(args: argparse.Namespace) -> int:
    from mmpo.commands.compare import CompareParams, run_compare

    result = run_compare(CompareParams(args.runs, args.out))
    if args.json:
        print_json(result)
    else:
        print(result["table"], file=results_stream())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmpo.commands.demo import run_demo

    run_demo(args.output_dir, args.overrides, seed=args.seed, kind=args.kind)
    return 0


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, nargs="+", help="JSONL/JSON/parquet/CSV file(s) or saved dataset folder"
    )
    parser.add_argument(
        "--set",
        dest="data_overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="data settings, e.g. margin_source=votes data.chosen_column=output_1 (the data. prefix is optional)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mmpo", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log from transformers too")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a reward model or a policy")
    train.add_argument("kind", choices=["reward", "policy", "kto"])
    train.add_argument("--config", help="YAML path or bundled config name (embedded_reward, embedded_policy, ...)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. loss.gamma=2 train.learning_rate=1e-5")
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="accuracy, ECE, NLL/Brier and reliability diagram of a trained model")
    ev.add_argument("--model", required=True, help="trained model folder (reward model, or policy)")
    ev.add_argument("--kind", choices=["reward", "policy"], default="reward")
    ev.add_argument("--ref-model", default="", help="policy eval: reference model (default: the one trained from)")
    ev.add_argument(
        "--reference-free",
        action="store_true",
        help="policy eval: h = beta * (log pi(y_w) - log pi(y_l)), no reference",
    )
    ev.add_argument(
        "--benchmark",
        choices=["pairs", "rewardbench"],
        default="pairs",
        help="pairs: held-out pair files; rewardbench: --data is RewardBench (allenai/reward-bench or a local file)",
    )
    ev.add_argument(
        "--prior-sets", nargs="+", default=[], help="RewardBench Prior Sets: allenai/pref-test-sets or local files"
    )
    ev.add_argument("--beta", type=_positive_float, default=None, help="policy eval: beta of the implicit reward")
    ev.add_argument("--gamma", type=_positive_float, default=1.0, help="gamma of the soft targets for NLL/Brier")
    ev.add_argument(
        "--scoring",
        choices=["rewardbench", "mmpo"],  # evaluation.pair_eval.SCORING_MODES (tests/test_cli.py)
        default=None,
        help="rewardbench: render, tokenise and truncate as reward-bench does (the default for --benchmark "
        "rewardbench); mmpo: as mmpo trains (the default for pairs)",
    )
    ev.add_argument(
        "--ref-free-type",
        choices=["sum", "avg", "norm"],  # features.logprobs.LOGP_REDUCTIONS (tests/test_cli.py)
        default=None,
        help="--reference-free: log pi summed, averaged per token or minus its L2 norm, as reward-bench's "
        "ref_free_type (default: avg under --scoring rewardbench, as its run_dpo.py; else sum)",
    )
    ev.add_argument(
        "--max-length",
        type=_positive_int,
        default=None,
        help="default 2048 (--scoring rewardbench) or 512; a frozen-encoder reward head: the length it was trained at",
    )
    ev.add_argument(
        "--max-prompt-length", type=_positive_int, default=None, help="default 128 (--scoring rewardbench) or 256"
    )
    ev.add_argument("--batch-size", type=_positive_int, default=16)
    ev.add_argument("--bins", type=_positive_int, default=10)
    ev.add_argument("--out", default="", help="folder for report.json and reliability.png")
    ev.add_argument(
        "--cache-dir",
        default=None,
        help="embeddings and log-probs cache ('' = none; default: the cache the model's training run used, "
        "else $MMPO_CACHE_DIR or ~/.cache/mmpo)",
    )
    _add_data_options(ev)
    ev.set_defaults(func=_cmd_eval)

    mg = sub.add_parser("margins", help="compute margins and targets p = sigmoid(gamma*m) for a data file")
    mg.add_argument("--gamma", type=_positive_float, default=1.0)
    mg.add_argument("--out", default="", help="write JSONL rows with margin and target columns")
    _add_data_options(mg)
    mg.set_defaults(func=_cmd_margins)

    bon = sub.add_parser("bon", help="best-of-n selection with a reward model")
    bon.add_argument("--reward-model", required=True)
    bon.add_argument("--data", required=True, help="rows with a prompt and a list of candidate responses")
    bon.add_argument("--prompt-column", default="prompt")
    bon.add_argument("--responses-column", default="responses")
    bon.add_argument("--scores-column", default="", help="optional judge scores of the candidates, for reporting")
    bon.add_argument("--max-length", type=_positive_int, default=512)
    bon.add_argument("--batch-size", type=_positive_int, default=16)
    bon.add_argument("--out", default="", help="write JSONL rows with the selected response")
    bon.set_defaults(func=_cmd_bon)

    ann = sub.add_parser("annotate-margins", help="(mmpo margins annotate) judge scores for unscored pairs")
    ann.prog = "mmpo margins annotate"
    ann.add_argument("--data", required=True, help="pair file or hub dataset id")
    ann.add_argument("--out", required=True, help="JSONL with score_chosen, score_rejected and the judge's text")
    ann.add_argument("--set", dest="data_overrides", nargs="*", default=[], metavar="KEY=VALUE")
    ann.add_argument(
        "--prompt-template", default="", help="JSON line: system_prompt, prompt_template ({question}, {answer})"
    )
    ann.add_argument("--limit", type=_non_negative_int, default=0, help="judge at most this many new rows")
    _add_judge_options(ann, 512)
    ann.set_defaults(func=_cmd_annotate)

    srv = sub.add_parser("serve", help="a local chat model behind an OpenAI-compatible endpoint")
    srv.add_argument("--model", required=True)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=_port, default=8000)
    srv.add_argument("--max-new-tokens", type=_positive_int, default=512)
    srv.set_defaults(func=_cmd_serve)

    gen = sub.add_parser("generate", help="a model's answers to MT-bench (FastChat answer format)")
    gen.add_argument("--model", required=True)
    gen.add_argument("--questions", default="mt-bench", help="'mt-bench' or a FastChat question.jsonl")
    gen.add_argument("--out", required=True)
    gen.add_argument(
        "--model-id", default="", help="model_id written in the answers (default: the --out file's stem, as FastChat)"
    )
    gen.add_argument("--max-new-tokens", type=_positive_int, default=1024)
    gen.add_argument(
        "--temperature",
        type=_non_negative_float,
        default=None,
        help="one temperature for every question (default: FastChat's per category: writing and roleplay 0.7, "
        "stem and humanities 0.1, extraction, math, coding and reasoning 0 = greedy)",
    )
    gen.add_argument("--batch-size", type=_positive_int, default=8)
    gen.add_argument("--limit", type=_non_negative_int, default=0, help="only the first N questions (0 = all)")
    gen.add_argument("--question-begin", type=_non_negative_int, default=None, help="questions[begin:end], as FastChat")
    gen.add_argument("--question-end", type=_non_negative_int, default=None)
    gen.add_argument("--num-choices", type=_positive_int, default=1, help="answers per question (choice i: seed i)")
    gen.add_argument(
        "--best-of",
        type=_positive_int,
        default=0,
        help="best-of-n: per turn, n samples and --reward-model's pick (turn 2 continues the picked turn 1)",
    )
    gen.add_argument("--reward-model", default="", help="--best-of: the reward model that picks")
    gen.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    gen.set_defaults(func=_cmd_generate)

    jdg = sub.add_parser("judge", help="MT-bench single-answer grading with per-category and per-turn scores")
    jdg.add_argument("benchmark", choices=["mt-bench"])
    jdg.add_argument("--answers", required=True, nargs="+", help="FastChat answer file(s)")
    jdg.add_argument(
        "--out",
        default="",
        help="judgments JSONL (default: FastChat's model_judgment/<judge>_single.jsonl, or _pair.jsonl)",
    )
    jdg.add_argument(
        "--mode",
        choices=["single", "pairwise-baseline", "pairwise-all"],  # evaluation.mt_bench_pairwise.PAIRWISE_MODES
        default="single",
        help="FastChat's modes: single-answer grading, every model against --baseline, or every pair of models",
    )
    jdg.add_argument(
        "--baseline", default="gpt-3.5-turbo", help="pairwise-baseline: the model (answer file stem) to compare to"
    )
    jdg.add_argument("--questions", default="mt-bench")
    jdg.add_argument("--references", default="mt-bench", help="reference answers for math, reasoning, coding")
    jdg.add_argument("--judge-prompts", default="mt-bench", help="FastChat judge_prompts.jsonl")
    _add_judge_options(jdg, 2048)
    jdg.set_defaults(func=_cmd_judge)

    cmp = sub.add_parser("compare", help="several runs' reports as one markdown table + overlaid reliability diagrams")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run folder, report.json or mt_bench.json; NAME=PATH,PATH")
    cmp.add_argument("--out", default="", help="folder for compare.md and reliability_*.png")
    cmp.add_argument("--json", action="store_true", help="print JSON (table and file paths) instead of the table")
    cmp.set_defaults(func=_cmd_compare)

    demo = sub.add_parser("demo", help="embedded default: MMPO vs hard labels on UltraFeedback (reward or policy)")
    demo.add_argument("--kind", choices=["reward", "policy"], default="reward")
    demo.add_argument("--output-dir", default=None, help="default outputs/embedded_<kind>")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="[mmpo] %(message)s", stream=sys.stderr
    )
    # under torchrun / accelerate launch only the main process logs progress; the others keep warnings and errors
    logging.getLogger("mmpo").setLevel(logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING)
    if not verbose:
        import datasets
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        datasets.logging.set_verbosity_error()
        if not sys.stderr.isatty():  # no carriage-return progress bars in pipes and log files
            datasets.disable_progress_bars()
            hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if argv[command_at : command_at + 2] == ["margins", "annotate"]:  # `mmpo margins annotate` is its own command
        argv = [*argv[:command_at], "annotate-margins", *argv[command_at + 2 :]]
    # parse_known_args + re-attach: argparse cannot mix options and a trailing KEY=VALUE list in subcommands.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(e.startswith("-") or "=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    _setup_logging(args.verbose)
    try:
        with library_output_to_stderr():
            return args.func(args)
    except MMPOError as exc:
        print(f"mmpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmpo: interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except Exception as exc:  # a library error: one line, the traceback only on request
        if args.debug:
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        print(f"mmpo: error: {type(exc).__name__}: {first_line} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
