"""Builds the data shipped inside the package (src/mmpo/bundled/), so a pip user has it offline.

* ``ultrafeedback/{train,eval}.jsonl.gz``: JSONL pair files in the binarized UltraFeedback layout (prompt,
  chosen, rejected and the GPT-4 scores under metadata.score_chosen / metadata.score_rejected), the same rows
  in the same order with only the five columns mmpo needs.
* ``mt_bench/{question,reference_answer_gpt-4,judge_prompts}.jsonl.gz``: FastChat's public MT-bench files
  (lm-sys/FastChat, fastchat/llm_judge/data/), byte for byte; their sha256 is written into the folder's
  README so a test can hold the package to them.

    python scripts/build_bundled_sample.py              # from ../shared/data beside the checkout
    python scripts/build_bundled_sample.py --from DIR   # DIR/ultrafeedback/*_clean.jsonl, DIR/mt_bench/*.jsonl

Every file is gzip-compressed with mtime 0: the same input always gives byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[1] / "src" / "mmpo" / "bundled"
MT_BENCH_FILES = {  # bundled name -> path under fastchat/llm_judge/data/ in lm-sys/FastChat
    "question.jsonl": "mt_bench/question.jsonl",
    "reference_answer_gpt-4.jsonl": "mt_bench/reference_answer/gpt-4.jsonl",
    "judge_prompts.jsonl": "judge_prompts.jsonl",
}
FASTCHAT_COMMIT = "0e6d3e4b"


def slim(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        meta = row.get("metadata", row)
        rows.append(
            {
                "prompt": row["prompt"],
                "chosen": row["chosen"],
                "rejected": row["rejected"],
                "score_chosen": meta["score_chosen"],
                "score_rejected": meta["score_rejected"],
            }
        )
    return rows


def write_gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def build_ultrafeedback(source: Path) -> None:
    for name in ("train", "eval"):
        rows = slim(source / "ultrafeedback" / f"{name}_clean.jsonl")
        write_gz(
            BUNDLED / "ultrafeedback" / f"{name}.jsonl.gz",
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode(),
        )
        print(f"ultrafeedback/{name}: {len(rows)} rows")


MT_BENCH_README = """# Bundled MT-bench files

FastChat's public MT-bench files (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"),
copied byte for byte from [lm-sys/FastChat](https://github.com/lm-sys/FastChat) at commit {commit},
`fastchat/llm_judge/data/`, and gzip-compressed. They are licensed under the Apache License 2.0 (see `LICENSE`
in this folder); the copyright stays with their authors.

| file | FastChat path | lines | sha256 of the uncompressed file |
|---|---|---|---|
{rows}

`mmpo generate --questions mt-bench` and `mmpo judge mt-bench` read them, so MT-bench runs offline after
`pip install`. `scripts/build_bundled_sample.py` rebuilds them; `tests/test_mt_bench.py` checks them against
the sha256 above.
"""


def build_mt_bench(source: Path, license_text: str) -> None:
    rows = []
    for name, fastchat_path in MT_BENCH_FILES.items():
        data = (source / "mt_bench" / name).read_bytes()
        write_gz(BUNDLED / "mt_bench" / f"{name}.gz", data)
        digest, lines = hashlib.sha256(data).hexdigest(), data.count(b"\n")
        rows.append(f"| `{name}.gz` | `fastchat/llm_judge/data/{fastchat_path}` | {lines} | `{digest}` |")
        print(f"mt_bench/{name}: {lines} lines")
    (BUNDLED / "mt_bench" / "README.md").write_text(
        MT_BENCH_README.format(commit=FASTCHAT_COMMIT, rows="\n".join(rows))
    )
    (BUNDLED / "mt_bench" / "LICENSE").write_text(license_text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--from", dest="source", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument(
        "--license", type=Path, default=None, help="FastChat's LICENSE (default: the one already bundled)"
    )
    args = parser.parse_args()
    build_ultrafeedback(args.source)
    license_file = args.license or BUNDLED / "mt_bench" / "LICENSE"
    build_mt_bench(args.source, license_file.read_text())


if __name__ == "__main__":
    main()
