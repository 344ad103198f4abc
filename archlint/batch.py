"""Batch runs, as ruff does them: directories are searched for ONNX files (honouring
``.gitignore`` and ``--exclude``), each file is analysed on its own (in ``--jobs``
processes, through the result cache of :mod:`archlint.cache`), and a file that cannot be
analysed becomes one :class:`FileError` naming it while every other file is still reported.

The command line prints each error as ``archlint: error: <file>: <problem>`` on stderr and
exits 2 at the end (after the other files' reports).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlint.config import Config
from archlint.errors import ArchlintError, first_line
from archlint.report import Report

MODEL_SUFFIXES = (".onnx",)


@dataclass(frozen=True)
class FileError:
    """A target that could not be analysed, and why (one line)."""

    target: str
    message: str

    def line(self) -> str:
        """``<file>: <problem>``, the file named once even when the message already starts with it."""
        if self.message.startswith(f"{self.target}:") or self.message.startswith(f"{self.target} "):
            return self.message
        return f"{self.target}: {self.message}"


class Reports(list[Report]):
    """The reports of a batch in input order, with the files that failed in ``errors``."""

    errors: list[FileError]

    def __init__(self, reports: Iterable[Report] = (), errors: Iterable[FileError] = ()) -> None:
        super().__init__(reports)
        self.errors = list(errors)


@dataclass(frozen=True)
class Options:
    """``--jobs``, ``--no-cache`` and ``--exclude`` (globs, already split at commas)."""

    jobs: int = 1
    cache: bool = True
    exclude: tuple[str, ...] = ()


def split_globs(values: Sequence[str]) -> tuple[str, ...]:
    """``--exclude a,b --exclude c`` -> ``("a", "b", "c")``."""
    return tuple(g.strip() for v in values for g in v.split(",") if g.strip())


# --- discovery ---

def discover(targets: Sequence[str], exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Expand directories into the ONNX files under them (sorted, ``.gitignore``d and
    ``exclude``d files left out; an ``exclude`` glob matches a path relative to the directory
    given, or any one path component); keep files and PyTorch targets as given (an explicit
    file is always checked, as ruff without ``--force-exclude``). Returns the targets and
    one warning per directory holding no model."""
    out: list[str] = []
    warnings: list[str] = []
    for target in targets:
        if not os.path.isdir(target):
            out.append(target)
            continue
        found = _walk(Path(target), exclude)
        if not found:
            warnings.append(f"{target}: the directory holds no {'/'.join(MODEL_SUFFIXES)} file")
        out.extend(found)
    return list(dict.fromkeys(out)), warnings


def _walk(root: Path, exclude: Sequence[str]) -> list[str]:
    files: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".archlint_cache")
                             and not _excluded(rel_dir / d, exclude))
        for name in sorted(filenames):
            if name.lower().endswith(MODEL_SUFFIXES) and not _excluded(rel_dir / name, exclude):
                files.append(str(Path(directory) / name))
    return _not_ignored(root, files)


def _excluded(rel: Path, patterns: Sequence[str]) -> bool:
    text = rel.as_posix()
    return any(fnmatch.fnmatchcase(text, p) or fnmatch.fnmatchcase(rel.name, p)
               or any(fnmatch.fnmatchcase(part, p) for part in rel.parts) for p in patterns)


def _not_ignored(root: Path, files: list[str]) -> list[str]:
    """Drop the files git ignores (``git check-ignore --stdin``) when ``root`` is inside a git
    work tree; outside one, or without git, nothing is dropped."""
    if not files:
        return files
    try:
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True,
                                text=True, timeout=30)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return files
        absolute = [str(Path(f).resolve()) for f in files]
        proc = subprocess.run(["git", "check-ignore", "--stdin", "-z"], cwd=root, capture_output=True,
                              input="\0".join(absolute) + "\0", text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return files
    if proc.returncode not in (0, 1):  # 1: none ignored; 128: an error (say, a path outside the tree)
        return files
    ignored = set(proc.stdout.split("\0")) - {""}
    return [f for f, a in zip(files, absolute) if a not in ignored]


# --- analysis ---

@dataclass(frozen=True)
class Job:
    """How every target of a batch is analysed: what the ``check`` command passes."""

    input_shapes: tuple[str, ...]
    config: Config
    no_lint: bool = False
    input_values: tuple[str, ...] = ()

    def analyse(self, target: str) -> Report:
        from archlint.api import analyze
        from archlint.input_spec import parse, with_values
        from archlint.lint import lint
        spec = parse(self.input_shapes) if self.input_shapes else parse(self.config.input_shape_for(target))
        spec = with_values(spec, self.input_values if self.input_values else self.config.input_value_for(target))
        if target == STDIN:
            report = _analyse_stdin(spec, self.config)
        else:
            report = analyze(target, spec, dtype=self.config.dtype, profile=self.config.profile, lint=False)
        if not self.no_lint:
            lint(report, self.config)
        return report


STDIN = "-"


def _analyse_stdin(spec: Any, config: Any) -> Report:
    """An ONNX model read from standard input (``archlint -``, as ruff's ``-``): its bytes go
    through the same file reader (and its checks) as a model on disk, by way of a temporary
    file; the report names it ``-``."""
    import tempfile

    from archlint.api import analyze
    data = sys.stdin.buffer.read()
    if not data:
        raise ArchlintError("no ONNX model on standard input")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stdin.onnx"
        path.write_bytes(data)
        try:
            report = analyze(str(path), spec, dtype=config.dtype, profile=config.profile, lint=False)
        except ArchlintError as exc:
            raise ArchlintError(str(exc).replace(str(path), STDIN)) from None
    report.model.path = STDIN
    return report


def effective_settings(job: Job) -> dict[str, Any]:
    """Everything in ``job`` that changes a report (``fail-on`` and ``models`` do not): the
    cache key's configuration part. The device profile enters by its values, so an edited
    profile TOML is a new key."""
    from archlint import profiles
    cfg = job.config
    profile = profiles.load(cfg.profile)
    return {"input_shapes": list(job.input_shapes), "input_shape_table": cfg.input_shapes,
            "input_values": list(job.input_values), "input_value_table": cfg.input_values,
            "select": cfg.select, "ignore": cfg.ignore, "per_layer_ignores": cfg.per_layer_ignores,
            "per_file_ignores": cfg.per_file_ignores, "rule_options": cfg.rule_options, "dtype": cfg.dtype,
            "profile": dataclasses.asdict(profile), "no_lint": job.no_lint,
            "config_dir": str(cfg.path.resolve().parent) if cfg.path is not None else None}


def cacheable(target: str) -> bool:
    """ONNX files only: a PyTorch target's result depends on every module it imports."""
    from archlint.api import _is_python_target
    return target != STDIN and not _is_python_target(target) and os.path.isfile(target)


def _failure(target: str, exc: BaseException) -> FileError:
    if isinstance(exc, ArchlintError):
        return FileError(target, first_line(exc))
    return FileError(target, f"internal error ({type(exc).__name__}: {first_line(exc)}); rerun with "
                             f"ARCHLINT_DEBUG=1 and report it")


def _analyse_one(job: Job, target: str) -> Report | FileError:
    try:
        return job.analyse(target)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:  # a torch target's module calling sys.exit() on import
        return FileError(target, f"the target exited (sys.exit({exc.code!r})) while being imported")
    except Exception as exc:
        if os.environ.get("ARCHLINT_DEBUG"):
            raise
        return _failure(target, exc)


def _worker(job: Job, target: str) -> dict[str, Any] | FileError:
    """In a worker process: the report as the cache's JSON-ready data (no IR graph to send back)."""
    from archlint import cache
    result = _analyse_one(job, target)
    if isinstance(result, FileError):
        return result
    try:
        return cache.encode(result)
    except cache.Uncachable as exc:
        return FileError(target, f"internal error (report not serialisable: {exc})")


# Reports of more layers are not cached: encoding and writing a million-layer report as JSON took
# longer than analysing the model again (benchmarks/README.md, ONNX speed and scale).
MAX_CACHED_LAYERS = 50_000


def run(targets: Sequence[str], job: Job, options: Options, cache_dir: Path | None = None) -> Reports:
    """Analyse ``targets`` (files and PyTorch targets, already discovered) and return their
    reports in input order, with one :class:`FileError` per target that failed. Cached
    results are used and stored when ``options.cache`` and ``cache_dir`` are set."""
    from archlint import profiles
    store = None
    if options.cache and cache_dir is not None:
        from archlint import cache
        store = cache.Cache(cache_dir)
    settings = effective_settings(job) if store is not None else {}
    results: list[Report | FileError | None] = [None] * len(targets)
    keys: dict[int, str] = {}
    todo: list[int] = []
    for i, target in enumerate(targets):
        if store is not None and cacheable(target):
            try:
                keys[i] = cache.key(target, settings)
            except OSError:
                pass
            else:
                hit = store.get(keys[i])
                if hit is not None:
                    results[i] = hit
                    continue
        todo.append(i)
    fresh = _compute([targets[i] for i in todo], job, options.jobs)
    for i, outcome in zip(todo, fresh):
        results[i] = outcome
        if store is not None and i in keys and isinstance(outcome, Report) and len(outcome.layers) <= MAX_CACHED_LAYERS:
            try:
                store.put(keys[i], cache.encode(outcome))
            except cache.Uncachable:
                pass
    device = profiles.load(job.config.profile)
    reports = Reports()
    for result in results:
        if isinstance(result, FileError):
            reports.errors.append(result)
        elif result is not None:
            if result.profile is None:
                result.profile = device
            reports.append(result)
    return reports


def _compute(targets: Sequence[str], job: Job, jobs: int) -> list[Report | FileError]:
    if jobs <= 1 or len(targets) <= 1 or STDIN in targets:  # only this process can read stdin
        return [_analyse_one(job, t) for t in targets]
    import concurrent.futures as futures  # process pools only for --jobs (16 ms of import)

    from archlint import api, cache, lint  # noqa: F401  (imported once here, not once per forked worker)
    from archlint.frontends import onnx_frontend  # noqa: F401
    workers = min(jobs, len(targets))
    # a few chunks per worker: one task per small file would spend more time on messages than on work
    chunk = max(1, len(targets) // (workers * 4))
    out: list[Report | FileError] = []
    with futures.ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        try:
            for value in pool.map(_worker, itertools.repeat(job), targets, chunksize=chunk):
                out.append(value if isinstance(value, FileError) else cache.decode(value))
        except futures.process.BrokenProcessPool:
            out += [FileError(t, "internal error (a worker process died); rerun with --jobs 1")
                    for t in targets[len(out):]]
    return out


def _context() -> Any:
    """``fork`` (fast: nothing re-imported) while torch is not loaded in this process;
    ``spawn`` once it is (forking a process with torch's threads can deadlock)."""
    import multiprocessing
    if "torch" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def print_errors(reports: Sequence[Report]) -> None:
    """One ``archlint: error: <file>: <problem>`` line per failed target, on stderr."""
    for error in getattr(reports, "errors", ()):
        print(f"archlint: error: {error.line()}", file=sys.stderr)


def exit_for_errors(reports: Sequence[Report]) -> None:
    """Exit 2 when any target failed (called after the other reports are written)."""
    if getattr(reports, "errors", None):
        sys.exit(2)
