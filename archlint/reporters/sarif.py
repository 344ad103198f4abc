"""SARIF 2.1.0 for GitHub code scanning: one run, rules with descriptions and help,
results with physical and logical locations and partial fingerprints; a file of the batch that
could not be analysed is an error notification of the run's invocation (SARIF 2.1.0, 3.20.21
``toolExecutionNotifications``), which makes ``executionSuccessful`` false.

The rule catalogue comes in :class:`~archlint.reporters.registry.RenderOptions` (the command
line passes it), so reporters do not import the rules."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions, RuleDoc

LEVELS = {"error": "error", "warning": "warning", "info": "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule(rule: RuleDoc) -> dict[str, Any]:
    return {"id": rule.code, "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": " ".join(rule.what.split())},
            "help": {"text": rule.docs_text(), "markdown": rule.docs_markdown()},
            "defaultConfiguration": {"level": LEVELS[rule.severity]},
            "properties": {"tags": ["architecture", rule.code[:3]]}}


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_posix() if not p.is_absolute() else p.as_uri()


def artifact(target: str) -> str:
    """The file a model target lives in: ``models/net.py:build`` -> ``models/net.py``; an
    imported ``pkg.module:attr`` -> the module's file (relative to the working directory when
    below it); an ``.onnx`` path is itself. SARIF locations are files, never target specs."""
    head, colon, attr = target.rpartition(":")
    if not colon or not head or len(head) == 1 or not attr.replace(".", "").replace("_", "").isalnum():
        return target  # a plain path (or a Windows drive letter)
    if head.endswith(".py"):
        return head
    module = sys.modules.get(head)
    filename = getattr(module, "__file__", None)
    if not filename:
        return head.replace(".", "/") + ".py"
    path = Path(filename).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def render(reports: Sequence[Report], options: RenderOptions | None = None) -> str:
    from archlint import __version__
    rules = list(options.rules) if options is not None else []
    index = {r.code: i for i, r in enumerate(rules)}
    results = []
    for report in reports:
        path = report.model.label
        model_file = artifact(path)
        for f in report.findings:
            uri = _uri(f.source[0] if f.source else model_file)
            physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
            if f.source:
                physical["region"] = {"startLine": int(f.source[1])}
            location: dict[str, Any] = {"physicalLocation": physical}
            if f.layer:
                location["logicalLocations"] = [{"name": f.layer, "kind": "member",
                                                 "fullyQualifiedName": f"{path}::{f.layer}"}]
            import hashlib  # OpenSSL's start-up: only when SARIF is written
            fingerprint = hashlib.sha256(f"{f.code}|{path}|{f.layer}".encode()).hexdigest()[:32]
            result: dict[str, Any] = {"ruleId": f.code}
            if f.code in index:
                result["ruleIndex"] = index[f.code]
            result.update({"level": LEVELS[f.severity],
                           "message": {"text": f"{f.layer}: {f.message}" if f.layer else f.message},
                           "locations": [location], "partialFingerprints": {"archlintLayer/v1": fingerprint}})
            if f.saving:
                result["properties"] = {"saving": f.saving.to_dict()}
            results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "archlint", "version": __version__, "informationUri":
                            "https://pypi.org/project/archlint/", "rules": [_rule(r) for r in rules]}},
        "results": results}
    failed = getattr(reports, "errors", ())  # files of a batch that could not be analysed
    run["invocations"] = [{"executionSuccessful": not failed, "toolExecutionNotifications": [
        {"level": "error", "message": {"text": error.line()},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(artifact(error.target))}}}]}
        for error in failed]}]
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2)


FORMAT = Format("sarif", render, order=3)
