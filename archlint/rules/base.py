"""The rule engine's building blocks: :class:`Rule` and its documentation template.

A rule is a small object with a code (``AL`` + 3 digits, grouped by family: 1xx layer
cost and geometry, 2xx receptive field, 3xx model budgets and completeness), a kebab-case
name, a default severity, a one-line summary, its docs in one template (What it does / Why
is this bad? / Example / Use instead, as ruff documents its rules), the public sources it
rests on, typed options (a frozen dataclass whose fields carry a default and a one-line
description), and a check over the analysed report that yields findings.

The README rule table, ``archlint explain`` and SARIF rule help are generated from these
fields, and configuration is validated against the options' declared names and types, so
documentation and options cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import textwrap
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from archlint.findings import SEVERITIES, Finding, Saving, severity_rank

__all__ = ["SEVERITIES", "Finding", "NoOptions", "Option", "Rule", "Saving", "option", "severity_rank"]


def option(default: Any, doc: str) -> Any:
    """A rule option: a dataclass field with its default and a one-line description."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class NoOptions:
    """A rule without options."""


@dataclass(frozen=True)
class Option:
    """One declared option, as configuration and documentation see it: the kebab-case key
    (``min-reduction`` for the field ``min_reduction``), its Python type, default and description."""

    key: str
    attr: str
    type: Any
    default: Any
    doc: str

    @property
    def type_name(self) -> str:
        return _type_name(self.type)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (as TOML gives it) has the declared type: ``bool`` is not an
        ``int``, an ``int`` is a ``float``, lists are checked element by element."""
        return _accepts(self.type, value)


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args if a is not type(None))
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(args[0])}"
    return getattr(tp, "__name__", str(tp))


def _accepts(tp: Any, value: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_accepts(args[0], v) for v in value)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


CheckFn = Callable[["Rule", Any, Any], Iterable[Finding]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One rule. ``what``, ``why``, ``example`` and ``instead`` are the four sections of its
    docs (``example`` and ``instead`` are code in ``lang``; ``lang=""``: prose); ``options`` is
    the dataclass of its options (instantiated with the defaults, or with the configured values
    by :meth:`configure`)."""

    code: str
    name: str
    severity: str
    summary: str
    what: str
    why: str
    example: str
    instead: str
    check: CheckFn
    options: type = NoOptions
    references: tuple[str, ...] = ()
    lang: str = "python"

    def finding(self, message: str, layer: Any = None, severity: str | None = None, **kwargs: Any) -> Finding:
        return Finding(self.code, self.name, severity or self.severity, message,
                       layer=getattr(layer, "name", layer), source=getattr(layer, "source", None), **kwargs)

    def declared(self) -> list[Option]:
        """The declared options, in declaration order."""
        hints = typing.get_type_hints(self.options)
        out = []
        for f in dataclasses.fields(self.options):
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            out.append(Option(f.name.replace("_", "-"), f.name, hints[f.name], default, f.metadata.get("doc", "")))
        return out

    def defaults(self) -> dict[str, Any]:
        """``{kebab-key: default}`` of every option."""
        return {o.key: o.default for o in self.declared()}

    def configure(self, values: dict[str, Any]) -> Any:
        """The options instance for configured ``{kebab-key: value}`` (already validated)."""
        by_key = {o.key: o.attr for o in self.declared()}
        return self.options(**{by_key[k]: v for k, v in values.items() if k in by_key})

    # ------------------------------------------------------------------ documentation
    def sections(self) -> list[tuple[str, str, bool]]:
        """(heading, body, is code) of the docs template, in order; empty sections left out."""
        code = bool(self.lang)
        out = [("What it does", self.what, False), ("Why is this bad?", self.why, False),
               ("Example", self.example, code), ("Use instead", self.instead, code)]
        opts = self.declared()
        if opts:
            out.append(("Options", "\n".join(f"{o.key} ({o.type_name}, default {_show(o.default)}): {o.doc}"
                                             for o in opts), False))
        if self.references:
            out.append(("References", "\n".join(self.references), False))
        return [(h, textwrap.dedent(b).strip(), code) for h, b, code in out if b.strip()]

    def docs_text(self) -> str:
        """Plain text (``archlint explain``, SARIF ``help.text``)."""
        parts = [f"{self.code} {self.name} (default severity: {self.severity})", "", f"{self.summary}."]
        for heading, body, _ in self.sections():
            parts += ["", f"{heading}:" if not heading.endswith("?") else heading, textwrap.indent(body, "    ")]
        return "\n".join(parts)

    def docs_markdown(self) -> str:
        """Markdown (SARIF ``help.markdown``)."""
        parts = [f"## {self.code} `{self.name}`", "", f"{self.summary} (default severity: {self.severity})."]
        for heading, body, code in self.sections():
            if code:
                text = f"```{self.lang}\n{body}\n```"
            elif heading in ("Options", "References"):
                text = "\n".join(f"- {line}" for line in body.splitlines())
            else:
                text = " ".join(body.split())
            parts += ["", f"### {heading}", "", text]
        return "\n".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "unset"
    return str(value)
