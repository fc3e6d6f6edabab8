"""One rank of a torchrun run that gathers, then exits at once: the shape in which a gloo rank aborted at exit.

Usage: python -m torch.distributed.run --standalone --nproc_per_node N tests/gather_and_exit_worker.py OUT

Each rank runs 200 tensor and object all-gathers (as accelerate's ``gather`` and ``gather_object`` do at the end
of a run) and leaves through ``mmpo.distributed.exit_process(0)``, as ``mmpo`` does. Left to the interpreter's
own exit, about two runs of four ranks in three abort ("terminate called without an active exception"). An
atexit handler writes OUT/rank-R.exited, and the rank's last words go to stdout with no newline, so the test sees
that the handlers ran and the streams were flushed before the process left.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from mmpo.distributed import exit_process

out = Path(sys.argv[1])
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
for step in range(200):
    gathered = [torch.empty(10_000) for _ in range(world)]
    dist.all_gather(gathered, torch.full((10_000,), float(rank)))
    objects: list[object] = [None] * world
    dist.all_gather_object(objects, {"rank": rank, "step": step})
assert [int(t[0]) for t in gathered] == list(range(world)) and [o["rank"] for o in objects] == list(range(world))
atexit.register(lambda: (out / f"rank-{rank}.exited").write_text(str(world)))
print(f"rank {rank} of {world} done", end="")
exit_process(0)
