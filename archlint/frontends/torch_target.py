"""Resolve ``package.module:attr`` and ``path/to/file.py:attr`` to an ``nn.Module``.

``attr`` (dotted paths allowed) is an ``nn.Module`` instance, an ``nn.Module`` class with
a no-argument constructor, or a zero-argument factory function. torch is imported only
here, and only when such a target is given.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from archlint.errors import ArchlintError, first_line

# set on a module imported from a file.py target: the label its classes are shown under
# (the file's stem), instead of the unique import name archlint gives the file
LABEL_ATTR = "__archlint_label__"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ArchlintError("analysing a PyTorch model needs torch: pip install archlint[torch]") from None
    return torch


def resolve(target: str) -> Any:
    torch = _torch()
    head, _, attr = target.rpartition(":")
    module = _import(head, target)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ArchlintError(f"{target}: '{head}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    nn = torch.nn
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        return _call(obj, target, f"constructing {obj.__name__}()")
    if callable(obj):
        result = _call(obj, target, f"calling {attr}()")
        if isinstance(result, nn.Module):
            return result
        raise ArchlintError(f"{target}: {attr}() returned {type(result).__name__}, not an nn.Module")
    raise ArchlintError(f"{target}: '{attr}' is a {type(obj).__name__}, not an nn.Module, a Module class or a "
                        f"factory function")


def _call(fn: Any, target: str, what: str) -> Any:
    try:
        return fn()
    except TypeError as exc:
        raise ArchlintError(f"{target}: {what} failed: {first_line(exc)} (it must take no arguments; wrap it in a "
                            f"factory function that passes them)") from None
    except (Exception, SystemExit) as exc:
        raise ArchlintError(f"{target}: {what} {_describe(exc)}") from None


def _import(head: str, target: str) -> Any:
    if head.endswith(".py") or "/" in head or "\\" in head:
        path = Path(head)
        if not path.is_file():
            raise ArchlintError(f"{target}: no such file {head}")
        # a name that is the same in every run (hash() of a str changes with PYTHONHASHSEED)
        name = f"_archlint_target_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ArchlintError(f"{target}: cannot import {head}")
        module = importlib.util.module_from_spec(spec)
        setattr(module, LABEL_ATTR, path.stem)
        sys.path.insert(0, str(path.resolve().parent))
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            sys.modules.pop(name, None)
            raise ArchlintError(f"{target}: importing {head} {_describe(exc)}") from None
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(head)
    except ModuleNotFoundError as exc:
        raise ArchlintError(f"{target}: no module named '{exc.name}'") from None
    except (Exception, SystemExit) as exc:
        raise ArchlintError(f"{target}: importing {head} {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """``raised TypeName: first line of the message`` (the type name alone when there is no
    message), or ``called sys.exit(code)``: a target that exits is bad input, not a reason
    for archlint to exit silently with the target's code."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    name = type(exc).__name__
    return f"raised {name}: {first_line(exc)}" if str(exc).strip() else f"raised {name}"
