"""``archlint fix PATH``: apply the findings' fixes (or a budget plan) and write the model.

``archlint fix PATH [--select AL101,...] [--layer GLOB] [--unsafe-fixes] [-o OUT] [--diff]
[--budget macs=2G|params=...|time=...] [--input-shape SPEC]``.

ONNX: ``-o OUT`` writes the rewritten model (validated by :mod:`archlint.fixes.onnx_writer`
before writing; the input is overwritten only when named as ``-o``). Without ``-o`` nothing is
written and a before/after table per layer is printed (``--diff`` prints it with ``-o`` too).
Torch targets: the table, and ``-o x.onnx`` exports the rewritten module with
``torch.onnx.export(..., dynamo=False)``. A fix that does not apply is listed with its reason.
Exit codes: 0 written or nothing to do, 1 budget not met (the closest plan is printed, nothing
written), 2 bad input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from archlint.errors import ArchlintError, first_line


def _fail(message: str) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    click.echo(f"archlint: error: {first}", err=True)
    sys.exit(2)


def _split(values: Sequence[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@click.command("fix")
@click.argument("target", metavar="PATH")
@click.option("--select", multiple=True, help="Rule codes or prefixes whose fixes to apply (comma-separated or "
              "repeated).")
@click.option("--layer", "layers", multiple=True, metavar="GLOB", help="Only layers whose name matches a glob.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that change the function (AL101, AL102, AL103, "
              "AL105; fine-tune afterwards).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the rewritten model here (.onnx).")
@click.option("--diff", is_flag=True, help="Print the before/after table per layer (always printed without -o).")
@click.option("--budget", metavar="KEY=VALUE,...", help="Plan unsafe fixes until the totals hold: macs=2G, "
              "params=5M, time=3ms.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16", "int8"]))
@click.option("--profile", metavar="NAME|FILE")
def fix(target: str, select: Sequence[str], layers: Sequence[str], unsafe_fixes: bool, output: str | None,
        diff: bool, budget: str | None, input_shapes: Sequence[str], dtype: str | None, profile: str | None) -> None:
    """Apply the findings' fixes (safe ones by default) and write the rewritten model with -o."""
    try:
        code = run(target, _split(select) or None, list(layers) or None, unsafe_fixes, output, diff, budget,
                   input_shapes, dtype, profile)
    except ArchlintError as exc:
        _fail(str(exc))
    except Exception as exc:  # never a traceback; ARCHLINT_DEBUG=1 shows it
        if os.environ.get("ARCHLINT_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {first_line(exc)}); rerun with ARCHLINT_DEBUG=1 and report it")
    sys.exit(code)


def _load(target: str, input_shapes: Sequence[str], dtype: str | None, profile: str | None) -> tuple[Any, Any, bool]:
    """(model to rewrite, report with findings, is ONNX): an ONNX path is rewritten from the
    file; a torch target is resolved once and that module is both analysed and rewritten."""
    from archlint.api import _is_python_target, analyze
    from archlint.input_spec import parse
    shapes = parse(input_shapes)
    if _is_python_target(target):
        from archlint.frontends import torch_target
        module = torch_target.resolve(target)
        return module, analyze(module, shapes, dtype=dtype, profile=profile), False
    if not os.path.isfile(target):
        raise ArchlintError(f"{target}: no such file")
    return target, analyze(target, shapes, dtype=dtype, profile=profile), True


def run(target: str, select: list[str] | None, layers: list[str] | None, unsafe: bool, output: str | None,
        diff: bool, budget: str | None, input_shapes: Sequence[str], dtype: str | None, profile: str | None) -> int:
    """The command's work; returns the exit code."""
    from archlint.fixes.apply import apply
    from archlint.fixes.plan import parse_budget, plan
    goal = parse_budget(budget) if budget else None  # a bad budget fails before any work
    if output and not output.lower().endswith(".onnx"):
        raise ArchlintError(f"{output}: -o writes an ONNX model; name it *.onnx")
    model, report, is_onnx = _load(target, input_shapes, dtype, profile)
    code = 0
    if goal is not None:
        from archlint.fixes.apply import _selected
        from archlint.fixes.plan import candidates
        pool = [f for f in candidates(report) if _selected(f.code, f.layer, select, layers)]
        chosen = plan(report, goal, model, pool)
        click.echo(f"plan: {chosen.summary()}")
        if not chosen.met:
            code = 1
        applied = apply(model, chosen.fixes, unsafe=True)
    else:
        applied = apply(model, report, select=select, layers=layers, unsafe=unsafe)
    for c, layer, reason in applied.not_fixable:
        click.echo(f"{c} {layer}: not applicable ({reason})")
    for outcome in applied.outcomes:
        click.echo(str(outcome))
    if not applied.applied:
        click.echo("nothing to fix" + ("" if unsafe or goal else " (unsafe fixes need --unsafe-fixes)"))
        return code
    if diff or not output:
        click.echo(diff_table(applied.applied))
    if not output:
        click.echo("nothing written (pass -o OUT.onnx to write the rewritten model)")
        return code
    if code:
        click.echo(f"nothing written: the plan does not meet the budget ({budget})")
        return code
    if is_onnx:
        applied.save(output)
    else:
        _export(applied.model, report, output)
    click.echo(f"wrote {output} ({len(applied.applied)} fixes applied)")
    return code


def diff_table(outcomes: Sequence[Any]) -> str:
    """One row per applied fix: params, MACs and estimated time before -> after (the Fix's
    registry-derived cost) and the relative weight error ``||W - W_hat|| / ||W||``."""
    from tabulate import tabulate

    from archlint.units import human, human_time
    rows = []
    for o in outcomes:
        b, a = o.fix.before, o.fix.after
        if b is None or a is None:
            continue
        rows.append([o.layer, o.code, f"{human(b.params)} -> {human(a.params)}", f"{human(b.macs)} -> {human(a.macs)}",
                     f"{human_time(b.est_time)} -> {human_time(a.est_time)}",
                     "" if o.weight_error is None else f"{o.weight_error:.3g}"])
    return tabulate(rows, headers=["layer", "rule", "params", "MACs", "est. time", "weight error"],
                    disable_numparse=True)


def _export(module: Any, report: Any, output: str) -> None:
    """Export the rewritten torch module to ONNX at the report's input shapes (the legacy
    TorchScript exporter, ``dynamo=False``: no extra dependency)."""
    import torch
    graph = report.graph
    shapes = [graph.shape(name) for name in graph.inputs]
    if any(s is None or any(not isinstance(d, int) for d in s) for s in shapes):
        raise ArchlintError(f"{output}: the input shapes are not all known; pass --input-shape")
    param = next(module.parameters(), None)
    device = param.device if param is not None and param.device.type != "meta" else torch.device("cpu")
    if param is not None and param.device.type == "meta":
        raise ArchlintError(f"{output}: a module on the meta device holds no weights to export")
    args = tuple(torch.randn(*s, device=device) for s in shapes)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, output, dynamo=False)
