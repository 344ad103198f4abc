"""The ``archlint`` command.

``archlint [check] PATH... [--input-shape SPEC] [--format ...] [--config FILE] ...``,
``archlint rules``, ``archlint explain AL101``.
Exit codes: 0 ok, 1 findings at or above ``fail-on``, 2 bad input or configuration.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from archlint.config import Config
from archlint.errors import ArchlintError, first_line
from archlint.findings import severity_rank
from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions, Write, formats

FORMATS = list(formats())

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
@click.option("--input-value", "input_values", multiple=True, metavar="NAME=VALUE",
              help="ONNX: fix an input's value (e.g. sr=16000), so that an If on it takes the branch it selects "
                   "(repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--output", "--output-file", "-o", "output", type=click.Path(dir_okay=False),
              help="Write the report here.")
@click.option("--all", "show_all", is_flag=True, help="Show shape-only and pass-through layers in the table.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: the nearest pyproject.toml with [tool.archlint]).")
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable, comma-separated or repeated "
              "(replaces the config's select and ignore).")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable on top of the config's select.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable, comma-separated or repeated (added "
              "to the config's).")
@click.option("--fail-on", metavar="info|warning|error", help="Lowest severity that exits 1 (default warning).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (2 still means bad input).")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule instead of the findings.")
@click.option("--no-group", is_flag=True, help="Table format: list every finding instead of grouping those of one "
              "rule with the same replacement.")
@click.option("--no-lint", is_flag=True, help="Only analyse; run no rules.")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16", "int8"]), help="Element type for memory traffic "
              "and the roofline estimate (default fp32).")
@click.option("--profile", "profile", metavar="NAME|FILE", help="Device profile for the roofline estimate: "
              "generic-x86-cpu (default), nvidia-h100-sxm, nvidia-rtx-4090, jetson-orin-nano, or a TOML file.")
@click.option("--measure", is_flag=True, help="Time each substitution finding's layer and replacement with torch.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache (.archlint_cache/), and "
              "with --measure re-measure instead of reading ~/.cache/archlint/measure.json.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Analyse files in this many processes.")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Leave out files found in directories that match (repeatable or comma-separated).")
def check(targets: Sequence[str], input_shapes: Sequence[str], input_values: Sequence[str], fmt: str,
          output: str | None, show_all: bool,
          config_path: str | None, select: Sequence[str], extend_select: Sequence[str], ignore: Sequence[str],
          fail_on: str | None, exit_zero: bool, statistics: bool, no_group: bool, no_lint: bool, dtype: str | None,
          profile: str | None, measure: bool, no_cache: bool, jobs: int, exclude: Sequence[str]) -> None:
    """Analyse and lint models.

    PATH is an .onnx file, or a PyTorch target package.module:attr or file.py:attr
    (an nn.Module instance or class, or a zero-argument factory; needs archlint[torch]).
    With no PATH, the `models` listed in [tool.archlint] are checked.
    """
    from archlint import batch
    overrides = Overrides(_split(select), _split(ignore), fail_on, dtype, profile, _split(extend_select))
    # --measure times the layers of the IR graph, which cached and worker reports do not carry
    run_options = batch.Options(1 if measure else jobs, not (no_cache or measure), batch.split_globs(exclude))
    reports, config = _guarded(lambda: _analyse(targets, input_shapes, config_path, overrides, no_lint, measure,
                                                run_options, not no_cache, input_values))
    _print_warnings(reports)
    batch.print_errors(reports)
    if statistics:
        _write_text(_statistics(reports), output)
    else:
        _emit(reports, formats()[fmt], output, _render_options(show_all, not no_group))
    batch.exit_for_errors(reports)
    if not exit_zero:
        _exit_for_findings(reports, config)


def _split(values: Sequence[str]) -> list[str]:
    """``--select AL105,AL201 --select AL3`` -> ``["AL105", "AL201", "AL3"]``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@dataclass(frozen=True)
class Overrides:
    """Command-line options that override the configuration."""

    select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    fail_on: str | None = None
    dtype: str | None = None
    profile: str | None = None
    extend_select: Sequence[str] = ()


T = TypeVar("T")


def _guarded(work: Callable[[], T]) -> T:
    """Run ``work``; any failure becomes one ``archlint: error:`` line and exit 2 (a traceback
    only with ARCHLINT_DEBUG=1)."""
    try:
        return work()
    except ArchlintError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # never a traceback for the user; ARCHLINT_DEBUG=1 shows it
        if os.environ.get("ARCHLINT_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {first_line(exc)}); rerun with ARCHLINT_DEBUG=1 and report it")


def _analyse(targets: Sequence[str], input_shapes: Sequence[str], config_path: str | None, overrides: Overrides,
             no_lint: bool, measure: bool, run_options: Any = None,
             use_cache: bool = True, input_values: Sequence[str] = ()) -> tuple[list[Report], Config]:
    reports, config = _run(targets, input_shapes, config_path, overrides, no_lint, run_options, input_values)
    if _HARD_EXIT:
        _KEEP_ALIVE.append(reports)
    if measure:
        _measure(reports, use_cache)
    return reports, config


def _measure(reports: Sequence[Report], use_cache: bool = True) -> None:
    """Time each substitution finding's layer and replacement (cached times are marked)."""
    from archlint.explore import measure_finding
    for report in reports:
        for finding in report.findings:
            if finding.code in ("AL101", "AL102"):
                measure_finding(report, finding, use_cache=use_cache)


def _print_warnings(reports: Sequence[Report]) -> None:
    for report in reports:
        for warning in report.warnings:
            click.echo(f"archlint: warning: {report.model.label}: {warning}", err=True)


def _render_options(show_all: bool, group: bool = True) -> RenderOptions:
    from archlint.rules import RULES
    return RenderOptions(show_all=show_all, group=group, rules=tuple(RULES.values()))


def _emit(reports: list[Report], fmt: Format, output: str | None, options: RenderOptions) -> None:
    """Write the report in ``fmt`` to ``output`` or stdout, with the closing summary line after
    a human-readable format. A streaming format (JSON) is written a layer at a time: a report
    of a million layers is never one string."""
    try:
        if fmt.write is not None:
            _stream(reports, fmt.write, output, options)
            return
        text = fmt.render(reports, options)
        if fmt.summary:
            text = f"{text}\n\n{summary(reports)}" if text else summary(reports)
        _write_text(text, output)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")


def _write_text(text: str, output: str | None) -> None:
    try:
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
        elif text:
            click.echo(text)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")


def summary(reports: Sequence[Report]) -> str:
    """ruff's closing line: ``Found 9 findings (1 warning, 8 info) in 1 model.`` or ``All checks passed!``."""
    counts = {s: sum(f.severity == s for r in reports for f in r.findings) for s in ("error", "warning", "info")}
    total = sum(counts.values())
    failed = len(getattr(reports, "errors", ()))
    not_analysed = f" {failed} file{'s' if failed != 1 else ''} could not be analysed." if failed else ""
    if not total:
        return f"No findings;{not_analysed}" if failed else "All checks passed!"
    parts = ", ".join(f"{n} {s}{'s' if n != 1 and s != 'info' else ''}" for s, n in counts.items() if n)
    models = len(reports)
    return (f"Found {total} finding{'s' if total != 1 else ''} ({parts}) in {models} "
            f"model{'s' if models != 1 else ''}.{not_analysed}")


def _stream(reports: list[Report], write: Write, output: str | None, options: RenderOptions) -> None:
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            write(reports, fh, options)
            fh.write("\n")
    else:
        write(reports, sys.stdout, options)
        sys.stdout.write("\n")


def _statistics(reports: Sequence[Report]) -> str:
    from archlint.reporters.table import render_statistics
    return render_statistics(reports)


def _exit_for_findings(reports: Sequence[Report], config: Config) -> None:
    threshold = severity_rank(config.fail_on)
    if any(severity_rank(f.severity) >= threshold for r in reports for f in r.findings):
        sys.exit(1)


def _configure(targets: Sequence[str], config_path: str | None, overrides: Overrides) -> Config:
    """The configuration file's settings with the command line's on top."""
    from archlint import config as config_mod
    path = config_path or config_mod.find_config(targets[0] if targets and Path(targets[0]).exists() else ".")
    config = config_mod.load(path)
    if overrides.select:  # the command line's selection replaces the configuration's select and ignore
        config.select = config_mod.codes(list(overrides.select), "--select", "option")
        config.ignore = []
    if overrides.extend_select:
        config.select = config.select + config_mod.codes(list(overrides.extend_select), "--extend-select", "option")
    if overrides.ignore:
        config.ignore = config.ignore + config_mod.codes(list(overrides.ignore), "--ignore", "option")
    if overrides.fail_on:
        config.fail_on = config_mod.check_severity(overrides.fail_on, "--fail-on")
    if overrides.dtype:
        config.dtype = overrides.dtype
    if overrides.profile:
        config.profile = overrides.profile
    return config


def _run(targets: Sequence[str], input_shapes: Sequence[str], config_path: str | None, overrides: Overrides,
         no_lint: bool, run_options: Any = None, input_values: Sequence[str] = ()) -> tuple[list[Report], Config]:
    from archlint import batch
    from archlint.input_spec import parse, parse_values

    config = _configure(targets, config_path, overrides)
    targets = list(targets) or config.model_targets()
    if not targets:
        raise ArchlintError("no model given: pass PATH..., or list PyTorch targets in [tool.archlint] models")
    parse(input_shapes)  # a bad --input-shape or --input-value is the command's error, not every file's
    parse_values(input_values)
    options = run_options or batch.Options()
    found, empty = batch.discover(targets, options.exclude)
    if not found:
        raise ArchlintError(f"no model to check ({'; '.join(empty)})")
    for warning in empty:
        click.echo(f"archlint: warning: {warning}", err=True)
    job = batch.Job(tuple(input_shapes), config, no_lint, tuple(input_values))
    if not options.cache:  # --no-cache: the cache module (hashlib, its codec) is not even imported
        return batch.run(found, job, options), config
    from archlint import cache
    return batch.run(found, job, options, cache.location(config.path)), config


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table", show_default=True)
def rules(fmt: str) -> None:
    """List the rule catalogue."""
    from archlint.rules import RULES
    if fmt == "markdown":
        from archlint.docs import rules_table
        click.echo(rules_table())
        return
    if fmt == "json":
        import json
        click.echo(json.dumps([{"code": r.code, "name": r.name, "severity": r.severity, "summary": r.summary,
                                "options": {o.key: {"type": o.type_name, "default": o.default, "description": o.doc}
                                            for o in r.declared()},
                                "explanation": r.docs_markdown()} for r in RULES.values()], indent=2))
        return
    from tabulate import tabulate
    click.echo(tabulate([[r.code, r.name, r.severity, r.summary] for r in RULES.values()],
                        headers=["code", "name", "severity", "what it flags"]))


@main.command()
@click.argument("target", metavar="PATH")
@click.option("--layer", required=True, help="The conv layer to explore (its name in the report).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC")
@click.option("--input-value", "input_values", multiple=True, metavar="NAME=VALUE", help="ONNX: fix an input's value.")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16", "int8"]))
@click.option("--profile", metavar="NAME|FILE")
@click.option("--measure", is_flag=True, help="Also time every variant with torch at the layer's shapes.")
@click.option("--no-cache", is_flag=True, help="--measure: re-measure, not reading ~/.cache/archlint/measure.json.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def explore(target: str, layer: str, input_shapes: Sequence[str], input_values: Sequence[str], dtype: str | None,
            profile: str | None, measure: bool, no_cache: bool, fmt: str) -> None:
    """What-if table for one conv layer: original, depthwise-separable, each group count G."""
    import json as _json

    from archlint.api import analyze
    from archlint.explore import whatif
    from archlint.input_spec import parse, parse_values
    try:
        report = analyze(target, parse(input_shapes), input_values=parse_values(input_values), dtype=dtype,
                         profile=profile, lint=False)
        rows = whatif(report, layer, measure, use_cache=not no_cache)
    except ArchlintError as exc:
        _fail(str(exc))
    if fmt == "json":
        click.echo(_json.dumps({"layer": layer, "profile": report.model.profile,
                                "dtype": report.model.dtype, "variants": rows}, indent=2))
        return
    from tabulate import tabulate

    from archlint.rules.views import human_time
    from archlint.units import human, human_bytes
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
    click.echo(f"{layer} on {report.model.profile} ({report.model.dtype})")
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
@click.argument("code", metavar="CODE|NAME")
def explain(code: str) -> None:
    """Explain one rule, by code or name: archlint explain AL101, archlint explain large-kernel."""
    from archlint.rules import RULES
    rule = RULES.get(code.upper()) or next((r for r in RULES.values() if r.name == code.lower()), None)
    if rule is None:
        _fail(f"unknown rule code '{code}' (see: archlint rules)")
    click.echo(rule.docs_text())


@main.command()
def clean() -> None:
    """Remove the result cache (.archlint_cache/ here and beside the nearest config file)."""
    from archlint import cache
    from archlint.config import find_config
    config = find_config(".")
    for removed in cache.clean([cache.location(None), cache.location(config)]):
        click.echo(f"removed {removed}")


from archlint.fix_command import fix as _fix_command  # noqa: E402  (the command lives in its own module)

main.add_command(_fix_command)


if __name__ == "__main__":
    main()
