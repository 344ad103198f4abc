"""The code's structure: one place per fact. Op-kind knowledge lives in the registry
(``archlint/ops/``); nothing else compares kind names, and every layer a frontend makes
carries only the attributes its kind's schema declares, with inputs in the kind's slots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import archlint
from archlint.ops import REGISTRY, registry
from tests.conftest import FIXTURES, onnx_path

PACKAGE = Path(archlint.__file__).resolve().parent

# `kind == "conv"`, `rec.kind in ("conv", "pool")`, `kind != 'constant'`, `FOO_KINDS = ...`, for any
# registered kind name (a chart's kind, `plot(kind="rf")`, is not an op kind)
_NAMES = "|".join(sorted(REGISTRY, key=len, reverse=True))
KIND_COMPARISON = re.compile(
    rf"""\bkind\s*(?:==|!=)\s*["'](?:{_NAMES})["']|\bkind\s+(?:not\s+)?in\s*[(\[{{]\s*["'](?:{_NAMES})["']"""
    r"|[A-Z]+_KINDS\s*=")


def test_no_op_kind_comparison_outside_the_registry():
    """Anything that needs to know what a kind is asks its registry entry for a property."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "ops":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if KIND_COMPARISON.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_grep_finds_what_it_is_meant_to_find():
    """The pattern above is itself checked, so the structure test cannot pass vacuously."""
    for line in ('if layer.kind == "conv":', "rec.kind not in ('conv', 'pool')", "VIEW_KINDS = frozenset()",
                 'x.kind in {"identity"}'):
        assert KIND_COMPARISON.search(line), line
    for line in ('plot(kind="rf")', 'if kind == "cost":', "registry.get(rec.kind).is_conv", "kind = UNKNOWN"):
        assert not KIND_COMPARISON.search(line), line


def test_a_kind_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        registry.kind("conv", "a second conv")
    with pytest.raises(ValueError, match="unknown input role"):
        registry.kind("fresh_kind_for_test", "x", slots=("data", "weights"))
    assert "fresh_kind_for_test" not in REGISTRY


def test_unknown_kind_has_a_conservative_entry():
    entry = registry.get("no-such-kind")
    assert entry is registry.UNKNOWN_KIND
    assert not entry.costed and entry.moves_data and not entry.spatially_pointwise


def test_conv_class():
    """Groups 1: dense; groups = input channels: depthwise; any other groups: grouped."""
    conv = REGISTRY["conv"]
    assert conv.conv_class({"groups": 1}, (1, 32, 8, 8)) == "dense"
    assert conv.conv_class({"groups": 32}, (1, 32, 8, 8)) == "depthwise"
    assert conv.conv_class({"groups": 4}, (1, 32, 8, 8)) == "grouped"
    assert REGISTRY["linear"].conv_class({}, (1, 32)) == "dense"


def _fixture_reports():
    torch = pytest.importorskip("torch")  # noqa: F841
    from fixtures.networks import NETWORKS, build
    for name in FIXTURES:
        yield f"{name}-torch", archlint.analyze(build(name), input_shape=NETWORKS[name][1], lint=False)
        for exporter in ("torchscript", "dynamo"):
            yield f"{name}-{exporter}", archlint.analyze(onnx_path(name, exporter), lint=False)


def test_frontends_follow_the_schema_and_slots():
    """Every layer's attributes are in its kind's schema, and its parameters sit in the
    kind's weight or bias slot (or, for kinds without one, are not read as inputs at all, as
    BatchNorm's scale in the torch frontend, or are data operands, as a learned query)."""
    problems = []
    for label, report in _fixture_reports():
        graph = report.graph
        assert graph is not None
        for layer in graph.layers():
            entry = registry.get(layer.kind)
            extra = set(layer.attrs) - entry.attr_names()
            if extra and entry.attrs is not None:
                problems.append(f"{label}: {layer.name} ({layer.kind}) has attributes {sorted(extra)}")
            if entry.attrs is None and set(layer.attrs) - registry.COMMON_ATTRS:
                problems.append(f"{label}: {layer.name} ({layer.kind}) has attributes {sorted(layer.attrs)} "
                                f"but its kind declares none")
            w, b = entry.slot("weight"), entry.slot("bias")
            for slot, name in enumerate(layer.inputs):
                role = entry.slots[slot] if slot < len(entry.slots) else None
                if name in graph.params and role is not None and role not in ("weight", "bias", "data"):
                    problems.append(f"{label}: parameter {name} of {layer.name} in a {role} slot")
            if w is not None and len(layer.inputs) > w and layer.inputs[w]:
                if layer.inputs[w] not in graph.params and layer.inputs[w] not in graph.constants \
                        and graph.producer.get(layer.inputs[w]) is None:
                    problems.append(f"{label}: {layer.name}'s weight slot holds {layer.inputs[w]}, no tensor")
            del b
    assert not problems, "\n".join(problems[:20])


def test_the_product_cites_no_file_outside_the_repository():
    """Messages, docstrings and explain texts cite public sources: no file of the package (and not
    the README) points at a reference file that is not in the repository."""
    outside = "REFERENCE" + ".md"
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if outside in p.read_text("utf-8")]
    readme = PACKAGE.parent / "README.md"
    if readme.exists() and outside in readme.read_text("utf-8"):
        offenders.append("README.md")
    assert not offenders, offenders
