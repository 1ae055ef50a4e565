"""Hostile YAML documents (issue 13, item 3), shared by the unit and e2e tests."""

from __future__ import annotations

import itertools


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": each level is a list of ten aliases to the previous one.

    Nine levels are 10**9 leaves in under 400 bytes.
    """
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = ['a: &a ["lol"]']
    for prev, name in itertools.pairwise(names[: levels + 1]):
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 10)}]")
    lines.append(f"groups: *{names[levels]}")
    return "\n".join(lines) + "\n"


RECURSIVE_ALIAS = "groups: &g\n  - name: g\n    rules: *g\n"


def deep_nesting(depth: int = 5000) -> str:
    """``groups`` nested ``depth`` flow sequences deep."""
    return "groups: " + "[" * depth + "]" * depth + "\n"


def deep_block_nesting(depth: int = 5000) -> str:
    """``depth`` levels of block mappings, one per line."""
    return "".join(f"{' ' * i}k{i}:\n" for i in range(depth)) + " " * depth + "k: v\n"
