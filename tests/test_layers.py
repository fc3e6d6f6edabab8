"""The package's imports point down the layer list of ARCHITECTURE.md, never up or sideways.

Every import statement counts, including the lazy ones inside functions, so a layering break cannot
hide behind a local import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mmpo"

# Bottom to top. A module may import its own package and any package of a lower layer; packages that share
# a layer (training and evaluation) may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "tensor_cache", "progress", "strict_json", "results_output", "host_memory"),
    ("file_errors",),
    ("distributed",),
    ("losses",),
    ("records",),
    ("config",),
    ("metrics",),
    ("models",),
    ("margins",),
    ("data",),
    ("features",),
    ("training", "evaluation", "serving"),
    ("commands",),
    ("cli", "__main__"),
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def top_package(module_file: Path) -> str:
    parts = module_file.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def imported_packages(module_file: Path) -> set[str]:
    """Top-level mmpo packages that ``module_file`` imports (absolute and relative imports)."""
    tree = ast.parse(module_file.read_text())
    here = module_file.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(("mmpo", *base, *(node.module.split(".") if node.module else [])))
                names = [module if node.module or base else f"mmpo.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "mmpo" and len(parts) > 1:
                found.add(parts[1])
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if top_package(p) != "__init__")


def test_every_package_has_a_layer():
    unplaced = {top_package(p) for p in modules()} - set(LAYER_OF)
    assert not unplaced, f"add {sorted(unplaced)} to LAYERS here and in ARCHITECTURE.md"


@pytest.mark.parametrize("module_file", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(module_file):
    package = top_package(module_file)
    level = LAYER_OF[package]
    for target in imported_packages(module_file) - {package}:
        assert target in LAYER_OF, f"{module_file.name} imports unknown mmpo package {target!r}"
        if package == "losses":
            pytest.fail(f"losses must stay pure torch, but {module_file.name} imports mmpo.{target}")
        assert LAYER_OF[target] < level, (
            f"{module_file.relative_to(PACKAGE)} (layer {package}) imports mmpo.{target}, which is "
            + ("beside it" if LAYER_OF[target] == level else "above it")
        )


def test_the_scanner_sees_lazy_and_relative_imports():
    """The check above is only as good as the scanner: make sure it sees imports inside functions."""
    sample = PACKAGE / "training" / "run.py"
    assert "config" in imported_packages(sample) and "metrics" in imported_packages(sample)
    lazy = PACKAGE / "data" / "pairs.py"  # imports the similarity estimator inside a function
    assert "margins" in imported_packages(lazy)


def test_benchmarks_and_scripts_import_names_that_exist():
    """The benchmarks run rarely; a name they import from mmpo that was renamed or removed must fail here."""
    import importlib
    import importlib.util

    root = PACKAGE.parents[1]
    for script in sorted([*(root / "benchmarks").glob("*.py"), *(root / "scripts").glob("*.py")]):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mmpo":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                        f"{script.name}: {node.module} has no {alias.name}"
                    )
