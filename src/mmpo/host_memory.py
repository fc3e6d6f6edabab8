"""Host memory for CPU training: large tensors on transparent huge pages, and freed memory kept in the process for
reuse (glibc's allocator), so that a training step's large tensors do not page-fault in again at every step.

Why: glibc's malloc serves every allocation above its mmap threshold (128 KiB, raised adaptively to at most
32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` when freed. A CPU training step allocates and frees
the same large tensors every time (activations, a layer's recomputation, the LM head's logit tiles of 200 MB,
gradient buffers), so each one comes back as fresh pages that the kernel faults in and zeroes on first touch:
on a 2-core machine a third of a bf16 SmolLM2 step was system time, and the LM head's fp32 matmul into a fresh
200 MB output ran at half the speed of the same matmul into a reused one. Serving them from the heap instead (a
high mmap threshold) and not trimming the heap's top lets the next step reuse the same pages: measured 1.17x
tokens/s in fp32 and 1.13x in bf16 on SmolLM2 (benchmarks/RESULTS.md), at about the same peak resident size
(freed memory is kept for the process, not returned to the system).

Huge pages: torch's CPU allocator aligns allocations of 2 MB and more to 2 MB and asks the kernel for transparent
huge pages (``madvise``) when ``THP_MEM_ALLOC_ENABLE=1``, which PyTorch's CPU performance guides recommend; a fault
then brings in 2 MB instead of 4 KB. torch reads the variable once, at its first allocation, so ``mmpo``'s entry
point sets it before anything imports torch (``prefer_huge_pages_for_large_tensors``). Both together measured
1.18x tokens/s in fp32 and 1.19x in bf16 on SmolLM2, at 0.74x and 0.81x the peak resident memory.

The heap setting is part of what PyTorch's own CPU launcher (``torch.backends.xeon.run_cpu``) gets by preloading
jemalloc or tcmalloc; it is done here with ``mallopt`` so a plain ``mmpo train`` gets it without a preload. It
changes the whole process, so only the entry points that own the process call it (``train_from_config``), and
never where the user already chose: a ``MALLOC_*`` variable or a ``glibc.malloc`` tunable in the environment is
left alone. Elsewhere (another C library, or an allocator preloaded in place of glibc's) it does nothing harmful:
it either finds no glibc or sets the options of an allocator that is not serving requests.

A preloaded jemalloc still does more, where batches change shape from step to step (as packed rows of real pairs
do): glibc before 2.38 cannot serve a 2 MB-aligned request from a free block of exactly its size, and its heap
stays on 4 KB pages outside torch's large tensors, so each larger batch faults in fresh memory again. Measured on
SmolLM2 (32 pairs, bf16): 459 and 461 tokens/s with jemalloc (``thp:always``, no decay) against 410 and 411 with
these settings, 1.12x; in fp32 see benchmarks/RESULTS.md. That needs ``LD_PRELOAD`` before the process starts,
which a library cannot do for its user, so ``mmpo env`` says which allocator a process runs on and which ones the
dynamic linker could preload (``host_allocator_report``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

# glibc's <malloc.h> parameter numbers
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# the largest value mallopt takes (an int): allocations up to 2 GiB come from the heap
HEAP_ALLOCATION_LIMIT = 2**31 - 1

_applied = False

# torch's switch for transparent huge pages in its CPU allocator (c10/core/impl/alloc_cpu.cpp)
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"
SYSTEM_HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def system_huge_pages_mode() -> str:
    """The kernel's transparent huge page mode (always, madvise or never), or "unavailable"."""
    try:
        text = SYSTEM_HUGE_PAGES.read_text()
    except OSError:
        return "unavailable"
    chosen = text[text.find("[") + 1 : text.find("]")] if "[" in text else ""
    return chosen or "unavailable"


def prefer_huge_pages_for_large_tensors(environ: dict[str, str] | None = None) -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` for torch's CPU allocator; True where it was set. Only before torch is
    imported (torch reads it once), only where the kernel can give huge pages on request, and never over a value
    the user set (``THP_MEM_ALLOC_ENABLE=0`` turns it off). Child processes inherit it."""
    environ = os.environ if environ is None else environ
    if "torch" in sys.modules or TORCH_HUGE_PAGES in environ:
        return False
    if system_huge_pages_mode() not in ("always", "madvise"):
        return False
    environ[TORCH_HUGE_PAGES] = "1"
    return True


def host_allocator_report() -> dict[str, object]:
    """For ``mmpo env``: how this process allocates host memory, and which faster allocators could be preloaded."""
    return {
        "torch_huge_pages": os.environ.get(TORCH_HUGE_PAGES, "0") not in ("", "0"),
        "system_huge_pages": system_huge_pages_mode(),
        "malloc_settings_from_environment": user_chose_allocator_settings(),
        "preloaded_allocator": loaded_allocator(),
        "installed_allocators": installed_allocators(),
    }


# malloc replacements that PyTorch's CPU guides preload; the library names start with "lib" plus these
REPLACEMENT_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
PROCESS_MAPS = Path("/proc/self/maps")


def loaded_allocator(maps: Path = PROCESS_MAPS) -> str | None:
    """The malloc replacement this process runs on (jemalloc, tcmalloc or mimalloc), or None for the C library's.

    Read from the libraries mapped into the process, not from ``LD_PRELOAD``: the loader skips a preload it cannot
    open (a wrong path, another architecture) with no more than a warning, and the variable would still name it."""
    try:
        lines = maps.read_text().splitlines()
    except OSError:
        return None
    mapped = {line.rsplit("/", 1)[-1] for line in lines if "/" in line}
    for allocator in REPLACEMENT_ALLOCATORS:
        if any(name.startswith(f"lib{allocator}") for name in mapped):
            return allocator
    return None


def installed_allocators() -> dict[str, str]:
    """{allocator: library} for the malloc replacements the dynamic linker can find here, which a user can preload
    (``LD_PRELOAD``) for CPU training."""
    found = {}
    for allocator in REPLACEMENT_ALLOCATORS:
        try:
            library = ctypes.util.find_library(allocator)
        except OSError:  # it parses the compiler's output, which a broken LD_PRELOAD fills with absent paths
            library = None
        if library:
            found[allocator] = library
    return found


def user_chose_allocator_settings(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment already sets glibc's malloc options (or preloads another allocator)."""
    environ = os.environ if environ is None else environ
    if any(name.startswith("MALLOC_") for name in environ):  # MALLOC_MMAP_THRESHOLD_, MALLOC_ARENA_MAX, ...
        return True
    return "glibc.malloc" in environ.get("GLIBC_TUNABLES", "") or "malloc" in environ.get("LD_PRELOAD", "")


def freed_memory_kept() -> bool:
    """Whether this process applied ``keep_freed_memory_for_reuse``."""
    return _applied


def keep_freed_memory_for_reuse() -> bool:
    """Serve allocations up to 2 GiB from the heap and keep the heap's freed top; True where it was applied
    (glibc, and no allocator setting of the user's in the environment). Idempotent."""
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_chose_allocator_settings():
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(HEAP_ALLOCATION_LIMIT)) == 1
    ok = ok and libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(HEAP_ALLOCATION_LIMIT)) == 1
    if not ok:
        logger.warning("glibc refused the malloc options that keep freed memory for reuse; running without them")
        return False
    _applied = True
    return True
