"""SARIF 2.1.0 for GitHub code scanning: one run, rules with descriptions and help,
results with physical and logical locations and partial fingerprints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archlint.report import Report
from archlint.rules import RULES

LEVELS = {"error": "error", "warning": "warning", "info": "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _rule(code: str) -> dict[str, Any]:
    rule = RULES[code]
    return {"id": code, "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.explanation.split("\n\n")[0].replace("\n", " ")},
            "help": {"text": rule.explanation, "markdown": f"**{code} {rule.name}**\n\n```\n{rule.explanation}\n```"},
            "defaultConfiguration": {"level": LEVELS[rule.severity]},
            "properties": {"tags": ["architecture", code[:3]]}}


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_posix() if not p.is_absolute() else p.as_uri()


def render(reports: Sequence[Report]) -> str:
    from archlint import __version__
    codes = list(RULES)
    results = []
    for report in reports:
        path = report.model.get("path") or "model"
        for f in report.findings:
            uri = _uri(f.source[0] if f.source else path)
            physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
            if f.source:
                physical["region"] = {"startLine": int(f.source[1])}
            location: dict[str, Any] = {"physicalLocation": physical}
            if f.layer:
                location["logicalLocations"] = [{"name": f.layer, "kind": "member",
                                                 "fullyQualifiedName": f"{path}::{f.layer}"}]
            fingerprint = hashlib.sha256(f"{f.code}|{path}|{f.layer}".encode()).hexdigest()[:32]
            result: dict[str, Any] = {
                "ruleId": f.code, "ruleIndex": codes.index(f.code), "level": LEVELS[f.severity],
                "message": {"text": f"{f.layer}: {f.message}" if f.layer else f.message},
                "locations": [location], "partialFingerprints": {"archlintLayer/v1": fingerprint}}
            if f.saving:
                result["properties"] = {"saving": f.saving.to_dict()}
            results.append(result)
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "archlint", "version": __version__, "informationUri":
                            "https://pypi.org/project/archlint/", "rules": [_rule(c) for c in codes]}},
        "results": results}]}
    return json.dumps(log, indent=2)
