"""The dense matmul peak of the machine a benchmark runs on, measured in the same run, for MFU.

On a GPU the vendor's dense bf16 peak is used by name (a measured matmul reaches 70-80% of it, and MFU is quoted
against the datasheet in the literature, e.g. open-instruct's DPO numbers). On a CPU there is no datasheet number
that holds for a rented core count, so the peak is what ``torch.mm`` of two 4096 x 4096 matrices reaches here, in
fp32 and in bf16 (AMX or AVX512-BF16 where the CPU has them), best of ten runs after a warm-up, into one output
buffer. The buffer matters: a fresh 4096 x 4096 output is 32-64 MB of new memory per call, and where first touching
memory is slow (a virtual machine that returns freed memory to its host: 1.7 s per GiB on this project's machine)
faulting it in costs about as much as a bf16 matmul. Measured that way the peak read 8-17% low in bf16 and up to 19% low
in fp32 with huge pages, and varied from run to run with the machine's memory, so every MFU quoted against it read
high by as much.

    .venv/bin/python benchmarks/machine_peak.py      # prints the JSON
"""

from __future__ import annotations

import json
import time

import torch

DENSE_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1, "A10G": 70.0}  # vendor peaks


def measured_matmul_gflops(dtype: torch.dtype, size: int = 4096, runs: int = 10) -> float:
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: thread pool, kernel selection, and the output's pages faulted in once
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def machine_peaks() -> dict[str, float | str]:
    """{'device', 'fp32_gflops', 'bf16_gflops'}: GPUs by name (bf16 dense peak; fp32 not quoted), CPUs measured."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        tflops = next((v for k, v in DENSE_BF16_TFLOPS.items() if k in name), None)
        return {"device": name, "bf16_gflops": tflops * 1e3 if tflops else float("nan"), "fp32_gflops": float("nan")}
    return {
        "device": f"CPU, {torch.get_num_threads()} threads",
        "fp32_gflops": round(measured_matmul_gflops(torch.float32), 1),
        "bf16_gflops": round(measured_matmul_gflops(torch.bfloat16), 1),
    }


if __name__ == "__main__":
    print(json.dumps(machine_peaks()))
