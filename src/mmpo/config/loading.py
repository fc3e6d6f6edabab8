"""Reading a RunConfig from YAML plus ``key.sub=value`` overrides.

Unknown keys are errors (a typo such as ``learning_rte`` must not silently fall back to a default),
and every value is coerced to the field's declared type so that ``gamma=inf`` on the command line
means float('inf').

Why not OmegaConf: its structured configs would give the same strictness, but its errors span several
lines (we promise one line naming the key), it does not read ``[a,b]`` or ``1e-5`` from the command line
as YAML does, and the coercion below is 80 lines with no dependency.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from mmpo.config.schema import DataConfig, RunConfig
from mmpo.config.strict_yaml import load_strict, short_repr
from mmpo.errors import ConfigError

_NONE_WORDS = ("", "none", "null", "~")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert YAML/CLI values to the dataclass field type, with an error naming the key."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):  # `float | None`
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            return None
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(value, inner, key)
    try:
        if annotation is float:
            if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity"):
                return math.inf
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            if not isinstance(value, (bool, int)):
                raise ValueError(value)
            return bool(value)
        if annotation is str:
            if isinstance(value, (dict, list)):
                raise ValueError(value)
            return "" if value is None else str(value)
        if origin is list:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError(value)
            (item_type,) = typing.get_args(annotation)
            return [_coerce(v, item_type, key) for v in value]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError, OverflowError):
        name = getattr(annotation, "__name__", str(annotation))
        raise ConfigError(f"{key}: cannot read {short_repr(value)} as {name}") from None
    return value


def fill_dataclass(instance: Any, values: dict[str, Any], prefix: str) -> None:
    """Set ``values`` on a (nested) dataclass instance, refusing unknown keys."""
    hints = typing.get_type_hints(type(instance))
    names = {f.name for f in dataclasses.fields(instance)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {full!r}; known keys here: {sorted(names)}")
        if key == "train_path" and isinstance(value, list) and "train_mixture" in names:
            # a list of train sources is a mixture (each a path, or a mapping with path and its own settings)
            key, value = "train_mixture", [v if isinstance(v, dict) else {"path": v} for v in value]
            full = f"{prefix}{key}"
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} must be a mapping")
            fill_dataclass(current, value, full + ".")
        else:
            setattr(instance, key, _coerce(value, hints[key], full))


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``a.b=1`` strings to a nested dict; values are parsed as YAML scalars (so 1e-5, true, [a,b] work)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {short_repr(item)} must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = load_strict(raw) if raw else ""
        except yaml.YAMLError:
            value = raw  # e.g. a path with ':' or '#': keep the text as written
        node = nested
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key part")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier {part}=...")
            node = child
        node[parts[-1]] = value
    return nested


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, or a one-line ConfigError naming the file and line."""
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist" if not path.exists() else f"{path} is a folder")
    try:
        loaded = load_strict(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} is not valid YAML ({problem})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    return loaded


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, kind: str | None = None
) -> RunConfig:
    """Read YAML (if any), apply overrides, validate. ``kind`` from the CLI wins over the file."""
    config = RunConfig()
    if path:
        fill_dataclass(config, read_yaml_mapping(Path(path)), "")
    if overrides:
        fill_dataclass(config, parse_overrides(overrides), "")
    if kind:
        config.kind = kind
    if config.kind == "kto" and config.loss.loss_type == type(config.loss)().loss_type:
        # KTO has one loss; the pairwise default ('mmpo') would only be refused
        config.loss = dataclasses.replace(config.loss, loss_type="kto")
    config.validate()
    return config


def data_config_from_overrides(overrides: list[str]) -> DataConfig:
    """A validated DataConfig from ``key=value`` strings (the ``--set`` of ``mmpo eval`` / ``margins``).

    Keys may be written with or without the ``data.`` prefix, so the hints printed by errors
    (``--set data.on_empty=drop``) work as written."""
    cfg = DataConfig()
    values = parse_overrides(overrides)
    if "data" in values and isinstance(values["data"], dict):
        values = {**values.pop("data"), **values}
    fill_dataclass(cfg, values, "data.")
    cfg.validate()
    return cfg
