"""Element types: one table of sizes and one test for "floating point", for tensor dtype
names (``float32``, ``int8``, as the frontends record them) and for the analysis dtypes a
user picks for the roofline estimate (``fp32``, ``fp16``, ``bf16``, ``int8``)."""

from __future__ import annotations

from typing import Any

from archlint.errors import ArchlintError

# Bytes per element of each tensor dtype name (numpy / torch spelling without the prefix).
ELEMENT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2,
                 "int8": 1, "uint8": 1, "bool": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "complex64": 8,
                 "complex128": 16, "uint16": 2, "uint32": 4, "uint64": 8, "int4": 1, "uint4": 1}

# Integer types that hold quantized values (ONNX QuantizeLinear's outputs: 4, 8 and 16 bits), as
# opposed to index and shape tensors (int32, int64) and masks (bool).
QUANTIZED_INTEGERS = frozenset({"int8", "uint8", "int16", "uint16", "int4", "uint4"})

# The analysis dtypes of ``--dtype`` and the tensor dtype each stands for.
ANALYSIS_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"}
ALIASES = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float": "fp32"}


def element_bytes(dtype: str | None) -> int:
    """Bytes per element of a tensor dtype name or an analysis dtype; float32's 4 when unknown."""
    if dtype is None:
        return 4
    if dtype in ANALYSIS_DTYPES:
        return ELEMENT_BYTES[ANALYSIS_DTYPES[dtype]]
    return ELEMENT_BYTES.get(dtype, 4)


def is_float(dtype: str | None, *, unknown: bool = True) -> bool:
    """Floating point (float*, bfloat16, complex: activations and trainable weights) as opposed
    to integer index and shape tensors. ``unknown`` is the answer for a dtype not recorded."""
    if dtype is None:
        return unknown
    return dtype.startswith(("float", "bfloat", "complex"))


def is_quantized_integer(dtype: str | None) -> bool:
    """A 4-, 8- or 16-bit integer type, the storage of quantized activations and weights."""
    return dtype in QUANTIZED_INTEGERS


def normalise(dtype: Any) -> str:
    """The analysis dtype: ``fp32`` (default), ``fp16``, ``bf16`` or ``int8``; torch dtypes and long
    names are accepted."""
    if dtype is None:
        return "fp32"
    text = str(dtype).replace("torch.", "")
    text = ALIASES.get(text, text)
    if text not in ANALYSIS_DTYPES:
        raise ArchlintError(f"unknown dtype {dtype!r}: use one of {', '.join(ANALYSIS_DTYPES)}")
    return text
