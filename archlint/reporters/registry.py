"""The output formats of ``--format``: each reporter module declares one :class:`Format`
as its module-level ``FORMAT``, and :func:`formats` finds them, so adding a format is adding
one module to :mod:`archlint.reporters`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from archlint.report import Report


class RuleDoc(Protocol):
    """What a reporter may show about a rule (the rules' :class:`~archlint.rules.base.Rule`
    has it): passed in, so that reporters do not import the rules."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def what(self) -> str: ...

    def docs_text(self) -> str: ...

    def docs_markdown(self) -> str: ...


@dataclass(frozen=True)
class RenderOptions:
    """What the command line asks of a renderer: ``show_all`` shows shape-only layers in the
    table; ``group`` folds findings of one rule with the same replacement into one line;
    ``rules`` is the rule catalogue, for formats that describe the rules (SARIF)."""

    show_all: bool = False
    group: bool = True
    rules: Sequence[RuleDoc] = ()


Render = Callable[["Sequence[Report]", RenderOptions], str]
Write = Callable[["Sequence[Report]", IO[str], RenderOptions], None]


@dataclass(frozen=True)
class Format:
    """An output format: its ``--format`` name, a renderer to text, optionally a streaming
    writer (used instead of ``render`` for large outputs), whether the closing summary line
    (``Found 3 findings ...``) follows its text (terminal formats), and its place in ``--help``."""

    name: str
    render: Render
    write: Write | None = None
    summary: bool = False
    order: int = 100


@cache
def formats() -> dict[str, Format]:
    """Every reporter module's ``FORMAT``, by name, in ``order``."""
    import archlint.reporters as package
    found: list[Format] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        fmt = getattr(module, "FORMAT", None)
        if isinstance(fmt, Format):
            found.append(fmt)
    found.sort(key=lambda f: (f.order, f.name))
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        raise ValueError(f"two reporters declare the same format name: {names}")
    return {f.name: f for f in found}
