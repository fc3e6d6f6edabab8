"""Which aten ops ran under a block, and the largest tensor they made, for tests that prove a mechanism ran (ops a
backward re-ran, a tile never exceeded) rather than only what came out."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class RecordedOps(TorchDispatchMode):
    """Every op dispatched under it (autograd's backward and compiled graphs included) and its largest output."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list = []
        self.largest_output = 0  # elements

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append(func)
        for tensor in out if isinstance(out, tuple | list) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.largest_output = max(self.largest_output, tensor.numel())
        return out

    def count(self, ops) -> int:
        """How many of the recorded ops are in ``ops`` (a set of aten overloads)."""
        return sum(func in ops for func in self.ops)

    def count_named(self, name: str) -> int:
        """How many recorded ops are overloads of the aten op ``name`` (``cat``, ``slice_backward``)."""
        return sum(func.overloadpacket.__name__ == name for func in self.ops)
