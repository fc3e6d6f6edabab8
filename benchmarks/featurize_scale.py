"""Featurising pair files at the paper's size, side by side, for 1k / 10k / 60k UltraFeedback-sized pairs at
max_length 1,024: the previous path (each pair tokenised on its own call into Python lists held in memory) against
the cached Arrow table (features/feature_table.py: batched tokenisation, which a fast tokenizer spreads over all
cores, written to a memory-mapped file in batches).

Each measurement runs in a fresh process and reports wall time and peak resident memory (ru_maxrss) of the whole
process while it holds the result, so the growth with the number of pairs is seen. The table is then opened again
(what every other rank and every later run does) and timed too.

    .venv/bin/python benchmarks/featurize_scale.py [--sizes 1000,10000,60000] [--num-proc 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ultrafeedback" / "train_clean.jsonl"


def pairs(count: int):
    from mmpo.records import Pair

    rows = [json.loads(line) for line in SHARED.open()]
    out = []
    for i in range(count):  # the 1,000 real pairs, each copy's prompt made distinct so it is tokenised again
        r = rows[i % len(rows)]
        margin = r["metadata"]["score_chosen"] - r["metadata"]["score_rejected"]
        out.append(Pair(f"{r['prompt']} ({i // len(rows)})", r["chosen"], r["rejected"], margin, i))
    return out


def measure(mode: str, count: int, cache: str, num_proc: int) -> dict:
    from mmpo.features.feature_table import build_feature_table, features_key
    from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs
    from mmpo.models import BUNDLED_SMOLLM2, load_tokenizer

    tokenizer = load_tokenizer(BUNDLED_SMOLLM2)
    data = pairs(count)
    length = LengthPolicy(1024, 512, "truncate")
    start = time.perf_counter()
    if mode == "lists":  # one call per pair, as featurising did before the table
        features = [f for pair in data for f in tokenize_policy_pairs([pair], tokenizer, length, report=False)]
    else:
        key = features_key(data, tokenizer, "policy", length)
        features = build_feature_table(
            data, lambda b: tokenize_policy_pairs(b, tokenizer, length, report=False), key, cache, num_proc
        )
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "pairs": count, "rows": len(features), "seconds": seconds, "peak_rss_mb": peak_mb}


def run_child(mode: str, count: int, cache: str, num_proc: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, str(count), cache, str(num_proc)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, count, cache, num_proc = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        print(json.dumps(measure(mode, count, cache, num_proc)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,60000")
    # 1: the tokenizer's own threads use every core; forked map workers would each run single-threaded
    parser.add_argument("--num-proc", type=int, default=1)
    args = parser.parse_args()
    print("pairs   lists s  lists MB | table s  table MB  reopen s  reopen MB | speed-up  memory ratio")
    for count in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as cache:
            lists = run_child("lists", count, cache, 1)
            table = run_child("table", count, cache, args.num_proc)
            reopen = run_child("table", count, cache, args.num_proc)
        assert lists["rows"] == table["rows"] == reopen["rows"]
        print(
            f"{count:>6} {lists['seconds']:>8.1f} {lists['peak_rss_mb']:>9.0f} | {table['seconds']:>7.1f} "
            f"{table['peak_rss_mb']:>9.0f} {reopen['seconds']:>9.2f} {reopen['peak_rss_mb']:>10.0f} | "
            f"{lists['seconds'] / table['seconds']:>7.2f}x {lists['peak_rss_mb'] / table['peak_rss_mb']:>12.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
