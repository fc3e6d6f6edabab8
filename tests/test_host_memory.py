"""Freed host memory kept for reuse (mmpo/host_memory.py): the large tensors of a step reuse the pages of the
step before instead of faulting fresh ones in; the user's own allocator settings are left alone; a training run
applies it (tests/test_training.py). Each case runs in a process of its own, since the setting is process-wide."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmpo.host_memory import (
    loaded_allocator,
    prefer_huge_pages_for_large_tensors,
    system_huge_pages_mode,
    user_chose_allocator_settings,
)

# a training step in miniature: 64 MB tensors allocated, used and freed, the same every step; the page faults
# of each step, counted after three warm-up steps
PAGE_FAULTS_PER_STEP = """
import json, resource, sys
import torch
from mmpo.host_memory import keep_freed_memory_for_reuse
applied = keep_freed_memory_for_reuse() if sys.argv[1] == "apply" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():
    x = torch.ones(16 * 2**20)
    for _ in range(4):
        x = (x * 2).add_(1)
counts = []
for _ in range(6):
    before = faults()
    step()
    counts.append(faults() - before)
print(json.dumps({"applied": applied, "faults": counts[3:]}))
"""

PAGES_PER_STEP = 5 * 64 * 2**20 // 4096  # five 64 MB tensors


def run_probe(script: str, mode: str, **env: str) -> dict:
    """``script`` in a fresh process whose environment has no allocator settings but ``env``; its JSON line."""
    settings = ("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD", "THP_MEM_ALLOC_ENABLE")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(settings)}
    out = subprocess.run(
        [sys.executable, "-c", script, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def faults_per_step(mode: str, **env: str) -> dict:
    return run_probe(PAGE_FAULTS_PER_STEP, mode, **env)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_steps_reuse_freed_large_tensors_without_page_faults():
    default = faults_per_step("default")
    kept = faults_per_step("apply")
    assert not default["applied"] and kept["applied"]
    # glibc's default: every 64 MB tensor is a fresh mmap, each of its pages faulted in again at every step
    assert all(count > 0.9 * PAGES_PER_STEP for count in default["faults"])
    # kept: the steps after the first reuse the pages the first one faulted in
    assert sum(kept["faults"]) < 0.25 * PAGES_PER_STEP  # at most one tensor's pages in three steps


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_users_own_allocator_settings_are_left_alone():
    chosen = faults_per_step("apply", MALLOC_ARENA_MAX="2")
    assert not chosen["applied"]
    assert all(count > 0.9 * PAGES_PER_STEP for count in chosen["faults"])  # glibc's default, as the user left it


def test_what_counts_as_the_users_choice():
    assert not user_chose_allocator_settings({"PATH": "/bin", "LD_PRELOAD": "libfoo.so"})
    assert user_chose_allocator_settings({"MALLOC_ARENA_MAX": "2"})
    assert user_chose_allocator_settings({"MALLOC_MMAP_THRESHOLD_": "131072"})
    assert user_chose_allocator_settings({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
    assert user_chose_allocator_settings({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"})
    assert not user_chose_allocator_settings({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})


# the page faults of allocating and touching one 64 MB tensor, after torch was imported with the environment given
FAULTS_OF_ONE_LARGE_TENSOR = """
import json, resource, sys
from mmpo.host_memory import prefer_huge_pages_for_large_tensors
set_here = prefer_huge_pages_for_large_tensors() if sys.argv[1] == "prefer" else False
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
tensor = torch.ones(16 * 2**20)
print(json.dumps({"set": set_here, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""

PAGES_OF_64_MB = 64 * 2**20 // 4096


def faults_of_one_large_tensor(mode: str, **env: str) -> dict:
    return run_probe(FAULTS_OF_ONE_LARGE_TENSOR, mode, **env)


@pytest.mark.skipif(system_huge_pages_mode() not in ("always", "madvise"), reason="the kernel gives no huge pages")
def test_large_tensors_fault_in_huge_pages_when_preferred_before_torch_loads():
    preferred = faults_of_one_large_tensor("prefer")
    assert preferred["set"]
    assert preferred["faults"] < 0.05 * PAGES_OF_64_MB  # 2 MB at a time: about 590 faults here, not 16,384
    if system_huge_pages_mode() == "madvise":  # without the request, 4 KB pages (under "always" huge ones anyway)
        assert faults_of_one_large_tensor("default")["faults"] > 0.9 * PAGES_OF_64_MB
    refused = faults_of_one_large_tensor("prefer", THP_MEM_ALLOC_ENABLE="0")  # the user's value is kept
    assert not refused["set"]
    if system_huge_pages_mode() == "madvise":
        assert refused["faults"] > 0.9 * PAGES_OF_64_MB


def test_huge_pages_are_only_asked_for_before_torch_is_imported():
    import torch  # noqa: F401  (imported in this process: torch has read its setting already)

    environ: dict[str, str] = {}
    assert not prefer_huge_pages_for_large_tensors(environ)
    assert environ == {}


def test_the_mmpo_command_asks_for_huge_pages_before_loading_torch():
    """`mmpo` (cli.run) sets it first thing; `mmpo env` reports what torch was started with."""
    clean = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    command = [sys.executable, "-m", "mmpo.cli", "env", "--json"]
    report = json.loads(subprocess.run(command, env=clean, capture_output=True, text=True, check=True).stdout)
    expected = system_huge_pages_mode() in ("always", "madvise")
    assert report["host_allocator"]["torch_huge_pages"] is expected
    off = {**clean, "THP_MEM_ALLOC_ENABLE": "0"}
    report = json.loads(subprocess.run(command, env=off, capture_output=True, text=True, check=True).stdout)
    assert report["host_allocator"]["torch_huge_pages"] is False


def test_the_allocator_is_read_from_the_libraries_mapped_in_the_process(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f10 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f20-7f30 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.9\n"
        "7f40-7f50 rw-p 00000000 00:00 0 [heap]\n"
    )
    assert loaded_allocator(maps) == "tcmalloc"
    maps.write_text("7f00-7f10 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert loaded_allocator(maps) is None
    assert loaded_allocator(tmp_path / "absent") is None


def test_env_reports_the_allocator_the_loader_preloaded_not_the_one_ld_preload_names(tmp_path):
    """A shared library preloaded under jemalloc's name is reported as the process's allocator; an LD_PRELOAD the
    loader could not open names jemalloc too, and is not (the loader skipped it with a warning)."""
    maps = Path("/proc/self/maps").read_text().splitlines()
    own_libraries = [line.split()[-1] for line in maps if "/libm.so" in line]
    if not own_libraries:
        pytest.skip("no libm mapped in this process to preload under another name")
    stand_in = tmp_path / "libjemalloc.so.2"  # a real shared object the loader maps; it replaces no malloc symbol
    shutil.copy(own_libraries[0], stand_in)
    command = [sys.executable, "-m", "mmpo.cli", "env", "--json"]
    for preload, expected in ((stand_in, "jemalloc"), (tmp_path / "absent" / "libjemalloc.so.2", None)):
        environ = {**os.environ, "LD_PRELOAD": str(preload)}
        result = subprocess.run(command, env=environ, capture_output=True, text=True, check=True)
        report = json.loads(result.stdout)["host_allocator"]
        assert report["preloaded_allocator"] == expected, result.stderr
        assert report["malloc_settings_from_environment"] is True  # mmpo leaves glibc's settings alone either way
        assert isinstance(report["installed_allocators"], dict)
