"""The paper's loop on a CPU, end to end with mmpo alone, and the table it ends in.

1. reward models on the bundled UltraFeedback sample (GPT-4 scores): MMPO and its hard-label baseline BT;
2. unscored pairs get margins from a judge (`mmpo margins annotate`; here the MMPO reward model, `rm:`,
   at paper scale `openai:gpt-4`);
3. SmolLM2-135M-Instruct policies trained on those margins with MMPO and with DPO (gamma = inf);
4. RewardBench-format evaluation with Prior Sets calibration for all four models (a local file built from
   LLMBar and Anthropic-HH rows; at paper scale `allenai/reward-bench` and `allenai/pref-test-sets`);
5. MT-bench answers from both policies, graded by the judge (`mmpo generate`, `mmpo judge mt-bench`);
6. `mmpo compare`: one markdown table, MMPO against DPO (policy) and BT (reward model).

Every step is the CLI command the README shows. Needs the shared data folder for steps 4 and 5.

    .venv/bin/python benchmarks/paper_loop_cpu.py [--out outputs/paper_loop] [--pairs 48] [--questions 6]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test data builders
from helpers import prior_rows, rewardbench_rows  # noqa: E402

from mmpo.cli import main as mmpo  # noqa: E402
from mmpo.config.paths import resolve_data_path  # noqa: E402

# the project's public test data, beside the checkout (as the tests read it); the package never looks for it
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def run(*argv: str) -> None:
    start = time.perf_counter()
    if mmpo(list(argv)) != 0:
        sys.exit(f"mmpo {' '.join(argv)} failed")
    print(f"[{time.perf_counter() - start:6.1f} s] mmpo {' '.join(argv)}", file=sys.stderr, flush=True)


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def benchmark_files(out: Path, per_subset: int, prior: int) -> tuple[str, str]:
    """A RewardBench-format file (Chat Hard subsets from LLMBar) and an anthropic_helpful Prior Set."""
    shared = SHARED_DATA
    rb = write_jsonl(out / "rewardbench_cpu.jsonl", rewardbench_rows(shared, per_subset))
    return rb, write_jsonl(out / "prior_sets_cpu.jsonl", prior_rows(shared, prior))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/paper_loop")
    parser.add_argument("--pairs", type=int, default=48, help="unscored pairs to annotate and train the policies on")
    parser.add_argument("--questions", type=int, default=6, help="MT-bench questions to answer (of 80)")
    args = parser.parse_args()
    out = Path(args.out)
    started = time.perf_counter()

    # 1. reward models: MMPO and BT on the bundled GPT-4-scored sample
    run("demo", "--output-dir", str(out / "rm"), "train.report_to=[none]")

    # 2. unscored pairs -> judge margins
    bundled = Path(resolve_data_path("bundled:ultrafeedback/train.jsonl.gz"))
    raw = [json.loads(line) for line in gzip.open(bundled, "rt")]
    unscored = [
        {"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
        for r in raw[-args.pairs - 50 : -50]
        if r["chosen"].strip() and r["rejected"].strip()
    ]
    pairs = write_jsonl(out / "unscored_pairs.jsonl", unscored)
    judge = f"rm:{out / 'rm' / 'mmpo'}"
    run("margins", "annotate", "--data", pairs, "--judge", judge, "--out", str(out / "scored_pairs.jsonl"))

    # 3. policies: MMPO and DPO on the judged margins (the judge may disagree with the original labels: swap)
    common = [
        "--config",
        "embedded_policy",
        f"data.train_path={out / 'scored_pairs.jsonl'}",
        "data.on_negative=swap",
        "data.max_train_samples=0",
        "max_length=256",
        "max_prompt_length=96",
        "train.report_to=[none]",
        f"cache_dir={out / 'cache'}",
    ]
    run("train", "policy", *common, f"train.output_dir={out / 'policy' / 'mmpo'}")
    run("train", "policy", *common, "loss.loss_type=dpo", f"train.output_dir={out / 'policy' / 'dpo'}")

    # 4. RewardBench (local, Chat Hard subsets) with Prior Sets calibration
    rb, prior = benchmark_files(out, per_subset=12, prior=24)
    for kind, name in (("reward", "rm/mmpo"), ("reward", "rm/bt"), ("policy", "policy/mmpo"), ("policy", "policy/dpo")):
        extra = ["--max-length", "256", "--max-prompt-length", "96"] if kind == "policy" else []
        run(
            "eval",
            "--model",
            str(out / name),
            "--kind",
            kind,
            "--benchmark",
            "rewardbench",
            "--data",
            rb,
            "--prior-sets",
            prior,
            "--out",
            str(out / "reports" / name.replace("/", "_")),
            *extra,
        )

    # 5. MT-bench: answers from both policies, graded by the judge
    for name in ("mmpo", "dpo"):
        answers = out / "mt_bench" / "model_answer" / f"{name}.jsonl"
        run(
            "generate",
            "--model",
            str(out / "policy" / name),
            "--model-id",
            name,
            "--out",
            str(answers),
            "--limit",
            str(args.questions),
            "--max-new-tokens",
            "96",
        )
        run(
            "judge",
            "mt-bench",
            "--answers",
            str(answers),
            "--judge",
            judge,
            "--out",
            str(out / "mt_bench" / name / "judgments.jsonl"),
        )

    # 6. one table
    reports = out / "reports"
    runs = [
        f"MMPO policy={out / 'policy' / 'mmpo'},{reports / 'policy_mmpo'},{out / 'mt_bench' / 'mmpo'}",
        f"DPO policy={out / 'policy' / 'dpo'},{reports / 'policy_dpo'},{out / 'mt_bench' / 'dpo'}",
        f"MMPO reward model={out / 'rm' / 'mmpo'},{reports / 'rm_mmpo'}",
        f"BT reward model={out / 'rm' / 'bt'},{reports / 'rm_bt'}",
    ]
    run("compare", *runs, "--out", str(out / "compare"))
    print(f"\nwhole loop: {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
