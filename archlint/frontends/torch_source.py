"""Where a traced layer comes from in the user's code: the call site of a function, the
``self.<attr> = ...`` line that constructed a module, and which files are library code
(torch, archlint, installed packages) rather than the user's model.

"Library code" is decided by a file's real location against the installed packages'
roots, never by substrings of its path: a model kept under a folder named ``torch`` or
``archlint`` is still the user's code, so its source lines and suppressions are found.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import site
import sysconfig
import textwrap
from functools import lru_cache
from typing import Any

import torch
import torch.fx as fx
from torch import nn

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


@lru_cache(maxsize=1)
def library_roots() -> tuple[str, ...]:
    """Real paths of the folders holding library code: torch's and archlint's package
    folders, the standard library, and every site-packages folder Python knows about."""
    archlint_package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = {os.path.dirname(torch.__file__), archlint_package}
    paths = sysconfig.get_paths()
    roots.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths)
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        roots.add(user_site)
    return tuple(sorted({os.path.realpath(r) for r in roots if r}))


@lru_cache(maxsize=4096)
def is_library(path: str) -> bool:
    """True for code that is not the user's model: generated or frozen code (``<frozen
    ...>``, fx's ``<eval_with_key>``) and files under a :func:`library_roots` folder."""
    if not path or path.startswith("<"):
        return True
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in library_roots())


def relative(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def call_site(node: fx.Node) -> tuple[str, int] | None:
    """The innermost frame of the user's code in the node's recorded call site or stack trace."""
    site_ = node.meta.get("archlint_call_site")
    if site_ is not None:
        return relative(site_[0]), site_[1]
    trace = node.stack_trace or node.meta.get("stack_trace")
    if not trace:
        return None
    frames = [(f, int(line)) for f, line in _FRAME.findall(trace) if not is_library(f)]
    if not frames:
        return None
    path, line = frames[-1]
    return relative(path), line


def innermost_module(stack: Any) -> str:
    """The qualified name of the innermost module in an ``nn_module_stack`` ("" at top level)."""
    if not stack:
        return ""
    last = list(stack.values())[-1]
    return last[0] if isinstance(last, tuple) else str(last)


def module_source(root: nn.Module, qualname: str) -> tuple[str, int] | None:
    """Where a module was constructed: the ``self.<attr> = ...`` line in the ``__init__``
    of the nearest enclosing user-defined (non-torch) module class."""
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        parent = root.get_submodule(".".join(parts[:cut])) if cut else root
        if type(parent).__module__.startswith("torch."):
            continue
        cls: Any = type(parent)
        return _assignment_line(cls, parts[cut])
    return None


@lru_cache(maxsize=512)
def _assignment_line(cls: Any, attr: str) -> tuple[str, int] | None:
    """The first ``self.<attr> = ...`` (or annotated / augmented assignment) in the source of
    ``cls`` or its user-defined bases."""
    for klass in cls.__mro__:
        if klass.__module__ == "torch" or klass.__module__.startswith("torch.") or klass is object:
            break
        try:
            lines, start = inspect.getsourcelines(klass)
            path = inspect.getsourcefile(klass)
        except (OSError, TypeError):
            continue
        try:
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            else:
                continue
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name) and \
                        t.value.id == "self" and path:
                    return relative(path), start + node.lineno - 1
    return None
