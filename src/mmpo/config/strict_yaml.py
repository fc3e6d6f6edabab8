"""YAML as mmpo configs use it: plain mappings, lists and scalars, each key once, no aliases.

PyYAML's safe loader keeps the last of two equal keys (so `lr: 1e-5` and, thirty lines down, `lr: 1e-3` trains at
1e-3 with no word) and expands aliases, so ten lines of nested `*a` references make a billion-element value that
exhausts memory while being built, and then again while an error message prints it. A config needs neither: both
are refused, naming the line. ``short_repr`` bounds any value an error message shows.
"""

from __future__ import annotations

from typing import Any

import yaml

SHOWN_CHARACTERS = 200


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed in mmpo configs", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in first_line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {short_repr(key)} (first at line {first_line[key] + 1})",
                    key_node.start_mark,
                )
            if isinstance(key, (str, int, float, bool)):
                first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


class NoAliasDumper(yaml.SafeDumper):
    """Writes a value seen twice out twice: what mmpo writes, StrictLoader reads back."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_plain(data: Any) -> str:
    return yaml.dump(data, Dumper=NoAliasDumper, sort_keys=False)


def load_strict(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def short_repr(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """repr(value), cut to ``limit`` characters with the total length said."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
