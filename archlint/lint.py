"""The rule engine: run the selected rules over an analysed report, apply per-layer and
per-file ignores and source suppressions, and report unused suppressions (AL001)."""

from __future__ import annotations

from archlint.config import Config
from archlint.report import Report
from archlint.rules import RULES, Finding, severity_rank
from archlint.rules.suppression import ALL, suppression_sites


def lint(report: Report, config: Config | None = None) -> list[Finding]:
    """Fill ``report.findings`` and return them, most severe first, then in layer order."""
    config = config or Config()
    path = report.model.path
    sites, layer_site = suppression_sites(report)
    findings: list[Finding] = []
    for code, rule in RULES.items():
        if code == "AL001" or not config.enabled(code, path):
            continue
        try:
            produced = list(rule.check(rule, report, config.options(code)))
        except (IndexError, TypeError, ValueError, KeyError, ZeroDivisionError, AttributeError) as exc:
            # a malformed layer the rule cannot read: say so rather than fail the whole run
            report.warnings.append(f"rule {code} skipped: it could not evaluate this model ({type(exc).__name__})")
            continue
        forced = config.severity(code)
        for finding in produced:
            if config.layer_ignored(code, finding.layer):
                continue
            if forced and not finding.details.get("downgraded"):
                finding.severity = forced
            site = sites.get(layer_site.get(finding.layer or "", ("", None)))
            if site is not None and (code in site.codes or ALL in site.codes):
                site.used.add(code if code in site.codes else ALL)
                continue
            finding.path = path
            findings.append(finding)
    if config.enabled("AL001", path):
        rule = RULES["AL001"]
        for site in sites.values():  # one per written suppression, however many layers it covers
            stale = sorted(c for c in site.codes - site.used
                           if c == ALL or (c in RULES and config.enabled(c, path)))
            unknown = sorted(c for c in site.codes if c != ALL and c not in RULES)
            if stale or unknown:
                what = ", ".join(stale + [f"{c} (unknown code)" for c in unknown])
                rec = report.layer(site.layers[0])
                f = rule.finding(f"suppression of {what} at {site.where} matches no finding; remove it", rec)
                f.path = path
                findings.append(f)
    order = {rec.name: i for i, rec in enumerate(report.layers)}
    findings.sort(key=lambda f: (-severity_rank(f.severity), order.get(f.layer or "", -1), f.code))
    report.findings = findings
    return findings
