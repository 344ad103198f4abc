"""The ``archlint`` command.

``archlint [check] PATH... [--input-shape SPEC] [--format ...] [--config FILE] ...``,
``archlint rules``, ``archlint explain AL101``.
Exit codes: 0 ok, 1 findings at or above ``fail-on``, 2 bad input or configuration.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from archlint.errors import ArchlintError

FORMATS = ["table", "concise", "json", "sarif", "github", "markdown", "html"]

# Set by :func:`entry`: the process ends with ``os._exit``, so the reports are kept here
# rather than freed object by object as ``check``'s frame unwinds.
_HARD_EXIT = False
_KEEP_ALIVE: list[Any] = []


def entry() -> None:
    """The ``archlint`` console script and ``python -m archlint``: run the command, flush its
    output and end the process with ``os._exit``.

    A million-layer report is tens of millions of Python objects; freeing them one by one
    at interpreter exit took 6 s of a 1M-node run, and the operating system takes the memory
    back at once. The exit status is the one the command chose (0, 1 or 2).
    """
    global _HARD_EXIT
    _HARD_EXIT = True
    code: Any = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):  # sys.exit("message") prints the message and exits 1
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (archlint ... | head): nothing more to say
            pass
    os._exit(0 if code is None else int(code))


def _fail(message: str) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    click.echo(f"archlint: error: {first}", err=True)
    sys.exit(2)


class DefaultGroup(click.Group):
    """``archlint model.onnx`` means ``archlint check model.onnx``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["check", *args]
        elif not args:
            args = ["check"]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archlint", prog_name="archlint")
def main() -> None:
    """Static analysis and linting of convolutional networks: per-layer shapes, receptive
    fields, params and MACs, and findings with quantified savings.

    `archlint PATH...` is short for `archlint check PATH...`.
    """
    # A short-lived process that makes no reference cycles worth collecting: the cyclic
    # collector would only walk the imported modules' objects again and again.
    gc.disable()


@main.command()
@click.argument("targets", nargs=-1, metavar="PATH...")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC",
              help="Input shape: 1x3x224x224, 1,3,224,224 or name=1x3x224x224 (repeat for several inputs).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option("--all", "show_all", is_flag=True, help="Show shape-only and pass-through layers in the table.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: the nearest pyproject.toml with [tool.archlint]).")
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (replaces the config's select and "
                                               "ignore).")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable (added to the config's).")
@click.option("--fail-on", type=click.Choice(["info", "warning", "error"]), help="Lowest severity that exits 1.")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule.")
@click.option("--no-lint", is_flag=True, help="Only analyse; run no rules.")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16", "int8"]), help="Element type for memory traffic "
              "and the roofline estimate (default fp32).")
@click.option("--profile", "profile", metavar="NAME|FILE", help="Device profile for the roofline estimate: "
              "generic-x86-cpu (default), nvidia-h100-sxm, nvidia-rtx-4090, jetson-orin-nano, or a TOML file.")
@click.option("--measure", is_flag=True, help="Time each substitution finding's layer and replacement with torch.")
@click.option("--no-cache", is_flag=True, help="--measure: re-measure, not reading ~/.cache/archlint/measure.json.")
def check(targets: Sequence[str], input_shapes: Sequence[str], fmt: str, output: str | None, show_all: bool,
          config_path: str | None, select: Sequence[str], ignore: Sequence[str], fail_on: str | None,
          statistics: bool, no_lint: bool, dtype: str | None, profile: str | None, measure: bool,
          no_cache: bool) -> None:
    """Analyse and lint models.

    PATH is an .onnx file, or a PyTorch target package.module:attr or file.py:attr
    (an nn.Module instance or class, or a zero-argument factory; needs archlint[torch]).
    With no PATH, the `models` listed in [tool.archlint] are checked.
    """
    try:
        reports, config = _run(targets, input_shapes, config_path, select, ignore, fail_on, no_lint, dtype, profile)
        if _HARD_EXIT:
            _KEEP_ALIVE.append(reports)
        if measure:
            from archlint.explore import measure_finding
            for report in reports:
                for finding in report.findings:
                    if finding.code in ("AL101", "AL102"):
                        measure_finding(report, finding, use_cache=not no_cache)
    except ArchlintError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # never a traceback for the user; ARCHLINT_DEBUG=1 shows it
        if os.environ.get("ARCHLINT_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              f"rerun with ARCHLINT_DEBUG=1 and report it")
    for report in reports:
        for warning in report.warnings:
            click.echo(f"archlint: warning: {report.model.get('path') or 'model'}: {warning}", err=True)
    if fmt == "json":  # streamed: a report of a million layers is never one string
        from archlint.reporters import json_report
        if statistics:
            from archlint.reporters.table import render_statistics
            click.echo(render_statistics(reports), err=True)
        try:
            if output:
                with open(output, "w", encoding="utf-8") as fh:
                    json_report.write(reports, fh)
                    fh.write("\n")
            else:
                json_report.write(reports, sys.stdout)
                sys.stdout.write("\n")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
        _exit_for_findings(reports, config)
        return
    text = _render(reports, fmt, show_all)
    if statistics:
        from archlint.reporters.table import render_statistics
        stats = render_statistics(reports)
        text = f"{text}\n\n{stats}" if fmt in ("table", "concise", "markdown") else text
        if fmt not in ("table", "concise", "markdown"):
            click.echo(stats, err=True)
    if output:
        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
    elif text:
        click.echo(text)
    _exit_for_findings(reports, config)


def _exit_for_findings(reports: list[Any], config: Any) -> None:
    from archlint.rules import severity_rank
    threshold = severity_rank(config.fail_on)
    if any(severity_rank(f.severity) >= threshold for r in reports for f in r.findings):
        sys.exit(1)


def _run(targets: Sequence[str], input_shapes: Sequence[str], config_path: str | None, select: Sequence[str],
         ignore: Sequence[str], fail_on: str | None, no_lint: bool, dtype: str | None = None,
         profile: str | None = None) -> tuple[list[Any], Any]:
    from archlint import config as config_mod
    from archlint.api import analyze
    from archlint.input_spec import parse
    from archlint.lint import lint

    path = config_path or config_mod.find_config(targets[0] if targets and Path(targets[0]).exists() else ".")
    config = config_mod.load(path)
    if select:  # the command line's selection replaces the configuration's select and ignore
        config.select = config_mod._codes(list(select), "--select", "option")
        config.ignore = []
    if ignore:
        config.ignore = config.ignore + config_mod._codes(list(ignore), "--ignore", "option")
    if fail_on:
        config.fail_on = fail_on
    targets = list(targets) or list(config.models)
    if not targets:
        raise ArchlintError("no model given: pass PATH..., or list PyTorch targets in [tool.archlint] models")
    shapes = parse(input_shapes)
    reports = []
    for target in targets:
        spec = shapes if shapes else parse(config.input_shape_for(target))
        report = analyze(target, spec, dtype=dtype or config.dtype, profile=profile or config.profile, lint=False)
        if not no_lint:
            lint(report, config)
        reports.append(report)
    return reports, config


def _render(reports: list[Any], fmt: str, show_all: bool) -> str:
    if fmt == "json":
        from archlint.reporters import json_report
        return json_report.render(reports)
    if fmt == "concise":
        from archlint.reporters import concise
        return concise.render(reports)
    if fmt == "sarif":
        from archlint.reporters import sarif
        return sarif.render(reports)
    if fmt == "github":
        from archlint.reporters import github
        return github.render(reports)
    if fmt == "markdown":
        from archlint.reporters import markdown
        return markdown.render(reports)
    if fmt == "html":
        from archlint.reporters import html
        return html.render(reports)
    from archlint.reporters import table
    return "\n\n".join(f"{table.render(r, show_all=show_all)}\n\n{table.render_findings(r)}" for r in reports)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True)
def rules(fmt: str) -> None:
    """List the rule catalogue."""
    from archlint.rules import RULES
    if fmt == "markdown":
        from archlint.docs import rules_table
        click.echo(rules_table())
        return
    from tabulate import tabulate
    click.echo(tabulate([[r.code, r.name, r.severity, r.summary] for r in RULES.values()],
                        headers=["code", "name", "severity", "what it flags"]))


@main.command()
@click.argument("target", metavar="PATH")
@click.option("--layer", required=True, help="The conv layer to explore (its name in the report).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16", "int8"]))
@click.option("--profile", metavar="NAME|FILE")
@click.option("--measure", is_flag=True, help="Also time every variant with torch at the layer's shapes.")
@click.option("--no-cache", is_flag=True, help="--measure: re-measure, not reading ~/.cache/archlint/measure.json.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def explore(target: str, layer: str, input_shapes: Sequence[str], dtype: str | None, profile: str | None,
            measure: bool, no_cache: bool, fmt: str) -> None:
    """What-if table for one conv layer: original, depthwise-separable, each group count G."""
    import json as _json

    from archlint.api import analyze
    from archlint.explore import whatif
    from archlint.input_spec import parse
    try:
        report = analyze(target, parse(input_shapes), dtype=dtype, profile=profile, lint=False)
        rows = whatif(report, layer, measure, use_cache=not no_cache)
    except ArchlintError as exc:
        _fail(str(exc))
    if fmt == "json":
        click.echo(_json.dumps({"layer": layer, "profile": report.model.get("profile"),
                                "dtype": report.model.get("dtype"), "variants": rows}, indent=2))
        return
    from tabulate import tabulate

    from archlint.units import human, human_bytes
    from archlint.rules.views import human_time
    headers = ["variant", "params", "MACs", "bytes", "FLOPs/byte", "est. time", "est. speedup"]
    if measure:
        headers += ["measured", "measured speedup"]
    table_rows = []
    for r in rows:
        row = [r["variant"], human(r["params"]), human(r["macs"]), human_bytes(r["bytes"]),
               f"{r['intensity']:.1f}" if r["intensity"] else "", human_time(r["est_time_s"]),
               f"{r['est_speedup']:.2f}x"]
        if measure:
            row += [human_time(r["measured_s"]), f"{r['measured_speedup']:.2f}x"]
        table_rows.append(row)
    click.echo(f"{layer} on {report.model.get('profile')} ({report.model.get('dtype')})")
    click.echo(tabulate(table_rows, headers=headers, disable_numparse=True))


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the profile TOML here.")
@click.option("--seconds", type=float, default=0.1, show_default=True, help="Minimum timing per measurement.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
              help="Full sets of measurements; the profile takes the medians, their spread is checked.")
@click.option("--progress/--no-progress", default=None, help="Progress on stderr (default: when it is a terminal).")
def calibrate(output: str | None, seconds: float, repeats: int, progress: bool | None) -> None:
    """Measure this machine's matmul throughput, memory bandwidth and conv efficiency (needs
    torch) and write a device profile for --profile. Refused (exit 2) when the measurements
    vary over 2x between repeats or a conv's fixed cost is over 1 ms; warned over 1.25x."""
    from archlint.measure import calibrate as run_calibration
    from archlint.measure import to_toml
    show = sys.stderr.isatty() if progress is None else progress
    try:
        result = run_calibration(seconds, repeats,
                                 (lambda msg: click.echo(f"archlint: calibrate: {msg}", err=True)) if show else None)
    except ArchlintError as exc:
        _fail(str(exc))
    worst = max(result.spread, key=lambda k: result.spread[k])
    click.echo(f"archlint: calibrate: {repeats} repeats, largest spread (max/min) {result.spread[worst]:.2f}x "
               f"({worst})", err=True)
    for warning in result.warnings:
        click.echo(f"archlint: warning: calibrate: {warning}", err=True)
    text = to_toml(result.profile, result.spread)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain one rule: archlint explain AL101."""
    from archlint.rules import RULES
    rule = RULES.get(code.upper())
    if rule is None:
        _fail(f"unknown rule code '{code}' (see: archlint rules)")
    options = "".join(f"\n  {k} = {v!r}" for k, v in rule.options.items())
    click.echo(f"{rule.code} {rule.name} (default severity: {rule.severity})\n\n{rule.summary}.\n\n"
               f"{rule.explanation}" + (f"\n\nOptions (defaults):{options}" if options else ""))


if __name__ == "__main__":
    main()
