"""The result cache of batch runs: ``.archlint_cache/`` holds one JSON file per analysed
ONNX file, keyed by a SHA-256 of the file's bytes, archlint's version and the effective
configuration (every setting that changes a report: input shapes, dtype, device profile,
rule selection and options, per-file/per-layer ignores, ``--no-lint``, the path as given).

The cache is plain JSON read back into the report's own dataclasses from a fixed list of
types: reading it never runs code (no pickle, no ``eval``, no import by name). A cached
report renders byte for byte as a fresh one (tests/test_batch.py); it has no IR graph
(``report.graph is None``), which no reporter reads. Runs that need the graph
(``--measure``) and PyTorch targets (their imports can change without the file changing)
are never cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from archlint.analyses.receptive_field import RFRecord
from archlint.analyses.rewrite import Cost, Fix
from archlint.findings import Finding, Saving
from archlint.ir import Layer, TensorInfo
from archlint.report import LayerRecord, ModelInfo, Report, Totals

CACHE_DIR = ".archlint_cache"
SCHEMA = 1  # bump when the encoding below changes


class Uncachable(Exception):
    """A report holds a value the encoding below does not know: it is not cached."""


# --- lossless encoding of a report's values (tuples and fractions survive the round trip) ---

def _enc(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value) is int or type(value) is float:
        return value
    if isinstance(value, Fraction):
        return {"$f": [value.numerator, value.denominator]}
    if isinstance(value, tuple):
        return {"$t": [_enc(v) for v in value]}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if any(k.startswith("$") for k in value):
            raise Uncachable("a dict key starting with '$'")
        return {k: _enc(v) for k, v in value.items()}
    raise Uncachable(type(value).__name__)


def _dec(value: Any) -> Any:
    if isinstance(value, list):
        return [_dec(v) for v in value]
    if isinstance(value, dict):
        if "$f" in value:
            n, d = value["$f"]
            return Fraction(n, d)
        if "$t" in value:
            return tuple(_dec(v) for v in value["$t"])
        return {k: _dec(v) for k, v in value.items()}
    return value


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: _enc(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _encode_fix(fix: Fix) -> dict[str, Any]:
    """A finding's :class:`Fix`: its layers and tensors as their fields, its costs as theirs."""
    d = _fields(dataclasses.replace(fix, original=[], layers=[], tensors={}, boundary={}, before=None, after=None))
    d["original"] = [_fields(layer) for layer in fix.original]
    d["layers"] = [_fields(layer) for layer in fix.layers]
    d["tensors"] = {name: _fields(t) for name, t in fix.tensors.items()}
    d["boundary"] = {name: _fields(t) for name, t in fix.boundary.items()}
    d["before"] = _fields(fix.before) if fix.before is not None else None
    d["after"] = _fields(fix.after) if fix.after is not None else None
    return d


def _decode_fix(d: dict[str, Any]) -> Fix:
    def layer(x: dict[str, Any]) -> Layer:
        return Layer(**{k: _dec(v) for k, v in x.items()})

    def tensor(x: dict[str, Any]) -> TensorInfo:
        return TensorInfo(**{k: _dec(v) for k, v in x.items()})

    def cost(x: dict[str, Any] | None) -> Cost | None:
        return None if x is None else Cost(**{k: _dec(v) for k, v in x.items()})
    values = {k: _dec(v) for k, v in d.items()
              if k not in ("original", "layers", "tensors", "boundary", "before", "after")}
    return Fix(**values, original=[layer(x) for x in d["original"]], layers=[layer(x) for x in d["layers"]],
               tensors={n: tensor(x) for n, x in d["tensors"].items()},
               boundary={n: tensor(x) for n, x in d["boundary"].items()},
               before=cost(d["before"]), after=cost(d["after"]))


def encode(report: Report) -> dict[str, Any]:
    """The report (without its graph and profile object) as JSON-ready data."""
    layers = []
    for rec in report.layers:
        d = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec) if f.name != "rf"}
        d = {k: _enc(v) for k, v in d.items()}
        d["rf"] = [_fields(r) for r in rec.rf]
        layers.append(d)
    findings = []
    for f in report.findings:
        d = {k: v for k, v in _fields(dataclasses.replace(f, saving=None, fix=None)).items()}
        d["saving"] = _fields(f.saving) if f.saving is not None else None
        d["fix"] = _encode_fix(f.fix) if f.fix is not None else None
        findings.append(d)
    return {"model": _fields(report.model), "totals": _fields(report.totals), "layers": layers,
            "findings": findings, "warnings": _enc(list(report.warnings))}


def decode(data: dict[str, Any]) -> Report:
    """:func:`encode`'s inverse: only the report's own dataclasses are built."""
    layers = []
    for d in data["layers"]:
        values = {k: _dec(v) for k, v in d.items() if k != "rf"}
        values["rf"] = [RFRecord(**{k: _dec(v) for k, v in r.items()}) for r in d["rf"]]
        layers.append(LayerRecord(**values))
    findings = []
    for d in data["findings"]:
        values = {k: _dec(v) for k, v in d.items() if k not in ("saving", "fix")}
        saving = d.get("saving")
        values["saving"] = Saving(**{k: _dec(v) for k, v in saving.items()}) if saving is not None else None
        values["fix"] = _decode_fix(d["fix"]) if d.get("fix") is not None else None
        findings.append(Finding(**values))
    model = ModelInfo(**{k: _dec(v) for k, v in data["model"].items()})
    totals = Totals(**{k: _dec(v) for k, v in data["totals"].items()})
    return Report(model=model, layers=layers, totals=totals, findings=findings, warnings=list(_dec(data["warnings"])))


# --- keys and files ---

def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """Name, size and modification time of every file of the installed archlint package: an
    edited checkout (the version number unchanged) never reads its older results."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
            st = path.stat()
            h.update(f"{path.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def key(target: str, settings: dict[str, Any]) -> str:
    """SHA-256 of archlint's version and code (:func:`code_fingerprint`), the target's bytes
    (and its external-data files' names and bytes: a ``.onnx.data`` beside it) and
    ``settings`` (the effective configuration, as JSON with sorted keys)."""
    from archlint import __version__
    digest = file_digest(target)
    extra = sorted(str(p.name) + ":" + file_digest(p) for p in _external_data(Path(target)))
    blob = json.dumps({"schema": SCHEMA, "version": __version__, "code": code_fingerprint(), "target": target,
                       "content": digest, "external": extra, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _external_data(path: Path) -> list[Path]:
    """Files named like ``model.onnx.data`` beside the model (ONNX external tensor data)."""
    try:
        return [p for p in path.parent.glob(path.name + ".*") if p.is_file()]
    except OSError:
        return []


class Cache:
    """``directory`` / ``<key>.json``; a missing, unreadable or malformed entry is a miss."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, entry_key: str) -> Report | None:
        try:
            text = (self.directory / f"{entry_key}.json").read_text(encoding="utf-8")
            return decode(json.loads(text))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, entry_key: str, data: dict[str, Any]) -> None:
        """Write atomically (a temporary file renamed); a cache that cannot be written is skipped."""
        try:
            self._prepare()
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
            os.replace(tmp, self.directory / f"{entry_key}.json")
        except OSError:
            pass

    def _prepare(self) -> None:
        if (self.directory / "CACHEDIR.TAG").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / ".gitignore").write_text("# Automatically created by archlint.\n*\n", encoding="utf-8")
        (self.directory / "CACHEDIR.TAG").write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n# archlint's result cache (https://bford.info/cachedir/)\n",
            encoding="utf-8")


def location(config_path: Path | None) -> Path:
    """Beside the configuration file when there is one (the project root, as ruff's
    ``.ruff_cache``), else in the working directory."""
    base = config_path.resolve().parent if config_path is not None else Path.cwd()
    return base / CACHE_DIR


def clean(directories: list[Path]) -> list[Path]:
    """Remove each cache directory that exists; return those removed."""
    removed = []
    for directory in dict.fromkeys(d.resolve() for d in directories):
        if directory.name == CACHE_DIR and directory.is_dir():
            shutil.rmtree(directory)
            removed.append(directory)
    return removed
