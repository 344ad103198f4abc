"""Generate the README's op-kind table from the registry: ``python -m archlint.docs``.

The README carries the table between ``<!-- ops:start -->`` and ``<!-- ops:end -->``; a
test checks that it matches this output, so code and documentation stay in step.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from archlint.ops import REGISTRY

START, END = "<!-- ops:start -->", "<!-- ops:end -->"
RULES_START, RULES_END = "<!-- rules:start -->", "<!-- rules:end -->"


def _doc(fn: object) -> str:
    text = inspect.getdoc(fn) or ""
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def ops_table() -> str:
    rows = ["| kind | what | MACs | FLOPs | examples |", "|---|---|---|---|---|"]
    for name, entry in REGISTRY.items():
        macs = _doc(entry.macs_fn) if entry.macs_fn.__name__ != "_zero" else "0"
        flops = _doc(entry.flops_fn) if entry.flops_fn.__name__ != "_zero" else "0"
        examples = ", ".join(f"`{e}`" for e in entry.examples)
        rows.append(f"| `{name}` | {entry.description} | {macs} | {flops} | {examples} |")
    return "\n".join(rows)


def rules_table() -> str:
    """The README's rule catalogue, generated from the rules themselves."""
    from archlint.rules import RULES
    rows = ["| code | name | default severity | what it flags | options |", "|---|---|---|---|---|"]
    for rule in RULES.values():
        opts = ", ".join(f"`{o.key}` = `{_toml(o.default)}`" for o in rule.declared())
        rows.append(f"| {rule.code} | `{rule.name}` | {rule.severity} | {rule.summary} | {opts} |")
    return "\n".join(rows)


def _toml(value: object) -> str:
    """A default as it is written in ``pyproject.toml`` (``true``, ``[2, 4]``); unset as ``unset``."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _replace(text: str, start: str, end: str, body: str) -> str:
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def update_readme(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    new = _replace(text, START, END, ops_table())
    if RULES_START in new:
        new = _replace(new, RULES_START, RULES_END, rules_table())
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


if __name__ == "__main__":
    if len(sys.argv) > 1:
        changed = update_readme(Path(sys.argv[1]))
        print("updated" if changed else "up to date")
    else:
        print(ops_table())
