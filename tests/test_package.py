"""What a pip user has: the wheel built from this checkout, installed into a folder of its own and run from an
empty working directory, carries the configs, the UltraFeedback sample and FastChat's MT-bench files, and never
looks for this repository's shared data."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MT_BENCH = ROOT / "src" / "mmpo" / "bundled" / "mt_bench"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install`` of the wheel into a bare folder (dependencies come from this environment)."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("mmpo-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def run_installed(installed: Path, cwd: Path, *python_args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MMPO_SHARED_DATA"}
    env["PYTHONPATH"] = str(installed)  # ahead of the editable checkout in site-packages
    return subprocess.run([sys.executable, *python_args], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_installed_package_is_the_wheel_and_says_its_version(installed, tmp_path):
    where = run_installed(installed, tmp_path, "-c", "import mmpo; print(mmpo.__file__)")
    assert where.stdout.strip().startswith(str(installed)), where.stderr
    version = run_installed(installed, tmp_path, "-m", "mmpo.cli", "--version")
    expected = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert (version.returncode, version.stdout.strip()) == (0, f"mmpo {expected}")


def test_mt_bench_is_read_from_the_package_in_an_empty_folder(installed, tmp_path):
    script = (
        "from mmpo.evaluation.mt_bench import load_questions, load_references, load_judge_prompts\n"
        "q = load_questions('mt-bench'); r = load_references('mt-bench'); p = load_judge_prompts('mt-bench')\n"
        "import mmpo.evaluation.mt_bench as m; print(len(q), len({x.category for x in q}), len(r), sorted(p)[0])\n"
    )
    result = run_installed(installed, tmp_path, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["80", "8", "30", "pair-math-v1"]


def test_the_installed_package_never_looks_for_the_repository(installed):
    sources = "\n".join(p.read_text() for p in (installed / "mmpo").rglob("*.py"))
    assert "MMPO_SHARED_DATA" not in sources
    assert not re.search(r"['\"]shared:", sources)
    assert "shared/data" not in sources and '"shared" / "data"' not in sources


def test_bundled_configs_are_listed_and_copied_out(installed, tmp_path):
    listed = run_installed(installed, tmp_path, "-m", "mmpo.cli", "configs")
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert "embedded_reward" in names and "accelerate/deepspeed_zero3" in names, listed.stderr
    copied = run_installed(installed, tmp_path, "-m", "mmpo.cli", "configs", "cp", "accelerate/fsdp", ".")
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "fsdp.yaml").read_text() == (ROOT / "src/mmpo/configs/accelerate/fsdp.yaml").read_text()
    again = run_installed(installed, tmp_path, "-m", "mmpo.cli", "configs", "cp", "accelerate/fsdp", ".")
    assert (again.returncode, again.stderr.strip()) == (
        2,
        f"mmpo: error: {tmp_path / 'fsdp.yaml'} exists; pass --force to overwrite it",
    )


def test_the_bundled_mt_bench_files_are_fastchats_byte_for_byte(shared_data):
    """The shared copies are FastChat's files at the commit the bundle's README names (fetched and compared when
    the bundle was built); the bundle must hold the same bytes, and the sha256 its README lists."""
    listed = dict(
        re.findall(
            r"\| `([\w.-]+)\.gz` \| `[^`]+` \| \d+ \| `([0-9a-f]{64})` \|", (BUNDLED_MT_BENCH / "README.md").read_text()
        )
    )
    assert sorted(listed) == ["judge_prompts.jsonl", "question.jsonl", "reference_answer_gpt-4.jsonl"]
    for name, digest in listed.items():
        bundled = gzip.decompress((BUNDLED_MT_BENCH / f"{name}.gz").read_bytes())
        assert bundled == (shared_data / "mt_bench" / name).read_bytes(), name
        assert hashlib.sha256(bundled).hexdigest() == digest, name
    assert "Apache License" in (BUNDLED_MT_BENCH / "LICENSE").read_text()


def test_env_lists_the_versions_a_bug_report_needs(installed, tmp_path):
    result = run_installed(installed, tmp_path, "-m", "mmpo.cli", "env", "--json")
    import json

    report = json.loads(result.stdout)
    for key in ("mmpo", "python", "torch", "transformers", "accelerate", "peft", "trl", "deepspeed", "device"):
        assert key in report, key
    assert report["python"] == sys.version.split()[0]
    import torch

    assert report["torch"] == torch.__version__


def test_the_demo_runs_from_the_installed_package_in_an_empty_folder(installed, tmp_path):
    """What the README's install section promises: after `pip install`, `mmpo demo` in a fresh folder (small
    settings here; the models come from the bundled-model packages, the pairs from the wheel)."""
    small = ["data.max_train_samples=64", "data.max_eval_samples=32", "train.num_train_epochs=1"]
    result = run_installed(installed, tmp_path, "-m", "mmpo.cli", "demo", *small)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| MMPO (soft targets) |" in result.stdout and "| BT (hard labels) |" in result.stdout
    assert (tmp_path / "outputs" / "embedded_reward" / "reliability_mmpo_vs_bt.png").stat().st_size > 1000
    assert (tmp_path / "outputs" / "embedded_reward" / "mmpo" / "README.md").exists()  # the model card
