"""The op vocabulary. Importing this package registers every op kind."""

from archlint.ops import control_flow, conv, dense, layout, pointwise, pooling, recurrent  # noqa: F401  (registration)
from archlint.ops.registry import REGISTRY, UNKNOWN, OpCall, OpKind, UnknownShape, get

__all__ = ["REGISTRY", "UNKNOWN", "OpCall", "OpKind", "UnknownShape", "get"]
