"""The ``archlint`` command.

``archlint PATH... [--input-shape SPEC] [--format table|json] [--output FILE]``.
Exit codes: 0 ok, 1 lint findings (later), 2 bad input or usage.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import click

from archlint.errors import ArchlintError


def _fail(message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    click.echo(f"archlint: error: {first}", err=True)
    sys.exit(2)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("targets", nargs=-1, required=True, metavar="PATH...")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC",
              help="Input shape: 1x3x224x224, 1,3,224,224 or name=1x3x224x224 (repeat for several inputs).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--all", "show_all", is_flag=True, help="Show shape-only and pass-through layers in the table.")
@click.version_option(package_name="archlint", prog_name="archlint")
def main(targets: Sequence[str], input_shapes: Sequence[str], fmt: str, output: str | None, show_all: bool) -> None:
    """Analyse models: per-layer shapes, receptive field, params and MACs.

    PATH is an .onnx file, or a PyTorch target package.module:attr or file.py:attr
    (an nn.Module instance or class, or a zero-argument factory; needs archlint[torch]).
    """
    from archlint.api import analyze
    from archlint.input_spec import parse

    try:
        shapes = parse(input_shapes)
        reports = [analyze(t, shapes) for t in targets]
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
    if fmt == "json":
        from archlint.reporters import json_report
        text = json_report.render(reports)
    else:
        from archlint.reporters import table
        text = "\n\n".join(table.render(r, show_all=show_all) for r in reports)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
    else:
        click.echo(text)


if __name__ == "__main__":
    main()
