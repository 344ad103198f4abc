"""``[tool.archlint]`` configuration: found in the nearest ``pyproject.toml`` above the
analysed file (as ruff does), or given with ``--config``; command-line flags override it.

Keys (unknown keys or rule codes are an error, exit 2)::

    [tool.archlint]
    select = ["AL1", "AL2"]          # codes or prefixes; default: every rule
    ignore = ["AL107"]
    fail-on = "warning"              # info | warning | error: lowest severity that exits 1
    models = ["mypkg.models:resnet"] # PyTorch targets checked when no path is given (pre-commit)
    input-shapes = {"models/*.onnx" = "1x3x224x224", "mypkg.models:resnet" = "1x3x224x224"}
    input-values = {"models/silero*.onnx" = "sr=16000"}   # ONNX inputs fixed to a value
    per-layer-ignores = {"layer1.*" = ["AL105"]}
    per-file-ignores = {"legacy/*.onnx" = ["AL1"]}

    [tool.archlint.budgets]          # AL301
    params = "25M"

    [tool.archlint.rules.AL101]      # rule options; every rule also takes severity
    min-reduction = 0.6
    severity = "warning"

    profile = "nvidia-rtx-4090"      # or a table with the keys of a profile file (archlint calibrate)
    dtype = "fp16"
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlint.dtypes import normalise
from archlint.errors import ArchlintError
from archlint.rules import RULES, SEVERITIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEYS = {"select", "ignore", "fail-on", "models", "input-shapes", "input-values", "per-layer-ignores",
        "per-file-ignores", "budgets", "rules", "profile", "dtype"}
COMMON_RULE_OPTIONS = {"severity"}


@dataclass
class Config:
    select: list[str] = field(default_factory=lambda: ["AL"])
    ignore: list[str] = field(default_factory=list)
    fail_on: str = "warning"
    models: list[str] = field(default_factory=list)
    input_shapes: dict[str, str] = field(default_factory=dict)
    input_values: dict[str, str] = field(default_factory=dict)
    per_layer_ignores: dict[str, list[str]] = field(default_factory=dict)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile: Any = None
    dtype: str | None = None
    path: Path | None = None

    def enabled(self, code: str, model_path: str | None = None) -> bool:
        """Selected by the longest matching prefix, ``ignore`` winning ties (as ruff)."""
        sel = max((len(p) for p in self.select if code.startswith(p)), default=-1)
        ign = max((len(p) for p in self.ignore if code.startswith(p)), default=-1)
        if sel < 0 or ign >= sel:
            return False
        if model_path:
            for pattern, codes in self.per_file_ignores.items():
                if _path_match(model_path, pattern, self.path) and any(code.startswith(c) for c in codes):
                    return False
        return True

    def layer_ignored(self, code: str, layer: str | None) -> bool:
        if layer is None:
            return False
        return any(fnmatch.fnmatchcase(layer, pattern) and any(code.startswith(c) for c in codes)
                   for pattern, codes in self.per_layer_ignores.items())

    def options(self, code: str) -> Any:
        """The rule's options object (its declared dataclass) with the configured values."""
        return RULES[code].configure(self.rule_options.get(code, {}))

    def severity(self, code: str) -> str | None:
        """A severity set for the rule in [tool.archlint.rules.CODE], if any."""
        return self.rule_options.get(code, {}).get("severity")

    def model_targets(self) -> list[str]:
        """``models`` with relative file paths (``models/net.onnx``, ``nets/x.py:build``) resolved
        from the config file's directory, as its globs are; ``pkg.module:attr`` targets unchanged."""
        if self.path is None:
            return list(self.models)
        base = self.path.parent
        out = []
        for target in self.models:
            head, colon, attr = target.rpartition(":")
            file, suffix = (head, f":{attr}") if colon and head.endswith(".py") else (target, "")
            if colon and not suffix:  # a module target, found on sys.path
                out.append(target)
                continue
            candidate = base / file
            if not Path(file).is_absolute() and candidate.exists():
                file = os.path.relpath(candidate)
            out.append(file + suffix)
        return out

    def input_shape_for(self, target: str) -> str | None:
        return self._spec_for(self.input_shapes, target)

    def input_value_for(self, target: str) -> str | None:
        return self._spec_for(self.input_values, target)

    def _spec_for(self, table: dict[str, str], target: str) -> str | None:
        for pattern, spec in table.items():
            if target == pattern or _path_match(target, pattern, self.path):
                return spec
        return None


def _path_match(path: str, pattern: str, config_path: Path | None) -> bool:
    candidates = {path, Path(path).as_posix(), Path(path).name}
    if config_path is not None:
        try:
            candidates.add(Path(path).resolve().relative_to(config_path.parent.resolve()).as_posix())
        except ValueError:
            pass
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def find_config(start: str | Path | None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.archlint]`` table, from ``start`` upward."""
    here = Path(start or ".").resolve()
    if here.is_file() or not here.exists():
        here = here.parent
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except OSError:
                continue
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                if "tool.archlint" in text:
                    return candidate  # ours, but broken: load() reports it
                continue
            if "archlint" in data.get("tool", {}):
                return candidate
    return None


def load(path: str | Path | None) -> Config:
    """Read and validate a config file (a pyproject.toml, or a TOML file whose top level or
    ``[tool.archlint]`` holds the keys). ``None``: the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchlintError(f"config {path}: no such file") from None
    except OSError as exc:
        raise ArchlintError(f"config {path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArchlintError(f"config {path}: invalid TOML ({exc})") from None
    table = data.get("tool", {}).get("archlint", data if "tool" not in data else {})
    return from_dict(table, p)


def codes(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchlintError(f"{where}: '{key}' must be a list of rule codes")
    out = []
    for code in value:
        code = code.strip().upper()
        if code != "ALL" and not any(c.startswith(code) for c in RULES):
            raise ArchlintError(f"{where}: unknown rule code '{code}' in '{key}' (see: archlint rules)")
        out.append("AL" if code == "ALL" else code)
    return out


def from_dict(table: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a ``[tool.archlint]`` table and build its :class:`Config` (errors name the
    config file and the key)."""
    where = f"config {path}" if path else "config"
    if not isinstance(table, dict):
        raise ArchlintError(f"{where}: [tool.archlint] must be a table")
    unknown = set(table) - KEYS
    if unknown:
        raise ArchlintError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} in [tool.archlint] "
                            f"(known: {', '.join(sorted(KEYS))})")
    cfg = Config(path=path)
    if "select" in table:
        cfg.select = codes(table["select"], "select", where)
    if "ignore" in table:
        cfg.ignore = codes(table["ignore"], "ignore", where)
    if "fail-on" in table:
        cfg.fail_on = check_severity(table["fail-on"], f"{where}: fail-on")
    cfg.models = _models(table.get("models", []), where)
    cfg.input_shapes = _input_shapes(table.get("input-shapes", {}), where)
    cfg.input_values = _input_values(table.get("input-values", {}), where)
    cfg.per_layer_ignores = _ignores(table.get("per-layer-ignores", {}), "per-layer-ignores", where)
    cfg.per_file_ignores = _ignores(table.get("per-file-ignores", {}), "per-file-ignores", where)
    cfg.rule_options = _rule_options(table.get("budgets", {}), table.get("rules", {}), where)
    if "profile" in table:
        cfg.profile = _profile(table["profile"], where)
    if "dtype" in table:
        cfg.dtype = normalise(table["dtype"])
    return cfg


def _models(models: Any, where: str) -> list[str]:
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ArchlintError(f"{where}: 'models' must be a list of targets such as 'pkg.module:attr'")
    return list(models)


def _input_shapes(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ArchlintError(f"{where}: 'input-shapes' must map model paths or targets to shapes like '1x3x224x224'")
    return dict(value)


def _input_values(value: Any, where: str) -> dict[str, str]:
    from archlint.input_spec import parse_values
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ArchlintError(f"{where}: 'input-values' must map model paths to input values like 'sr=16000'")
    for spec in value.values():
        try:
            parse_values(spec)
        except ArchlintError as exc:
            raise ArchlintError(f"{where}: input-values: {exc}") from None
    return dict(value)


def _ignores(value: Any, key: str, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ArchlintError(f"{where}: '{key}' must map glob patterns to lists of rule codes")
    return {pattern: codes(listed, key, where) for pattern, listed in value.items()}


def _rule_options(budgets: Any, rules: Any, where: str) -> dict[str, dict[str, Any]]:
    """``[tool.archlint.rules.CODE]`` tables and ``[tool.archlint.budgets]`` (AL301's options),
    each checked against the rule's declared options."""
    if not isinstance(budgets, dict):
        raise ArchlintError(f"{where}: [tool.archlint.budgets] must be a table")
    if not isinstance(rules, dict):
        raise ArchlintError(f"{where}: [tool.archlint.rules] must be a table of rule codes")
    options: dict[str, dict[str, Any]] = {}
    if budgets:
        options["AL301"] = dict(budgets)
    for code, opts in rules.items():
        code_u = code.upper()
        if code_u not in RULES:
            raise ArchlintError(f"{where}: unknown rule code '{code}' in [tool.archlint.rules]")
        if not isinstance(opts, dict):
            raise ArchlintError(f"{where}: [tool.archlint.rules.{code}] must be a table")
        options.setdefault(code_u, {}).update(opts)
    for code, opts in options.items():
        _check_rule_options(code, opts, where)
    return options


def _check_rule_options(code: str, opts: dict[str, Any], where: str) -> None:
    """Names and types from the rule's declared options; then the options object itself is
    built, so that its own checks (a budget's quantity) run now, not mid-analysis."""
    if "severity" in opts:
        check_severity(opts["severity"], f"{where}: [tool.archlint.rules.{code}] severity")
    rule = RULES[code]
    declared = {o.key: o for o in rule.declared()}
    known = set(declared) | COMMON_RULE_OPTIONS
    bad = set(opts) - known
    if bad:
        raise ArchlintError(f"{where}: unknown option(s) {', '.join(sorted(bad))} for {code} "
                            f"(known: {', '.join(sorted(known)) or 'none'})")
    for key, value in opts.items():
        if key in declared and not declared[key].accepts(value):
            raise ArchlintError(f"{where}: option {key} of {code} must be a {declared[key].type_name}, "
                                f"got {value!r}")
    rule.configure(opts)


def _profile(value: Any, where: str) -> Any:
    from archlint import profiles
    if isinstance(value, dict):
        return profiles.from_dict(value, f"{where}: [tool.archlint.profile]")
    return profiles.load(value)


def check_severity(value: Any, where: str = "option") -> str:
    if value not in SEVERITIES:
        raise ArchlintError(f"{where}: must be one of {', '.join(SEVERITIES)}, got {value!r}")
    return str(value)
