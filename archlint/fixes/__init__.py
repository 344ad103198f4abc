"""Applying fixes: weights carried over (:mod:`.weights`, :mod:`.carry`), the ONNX and torch
writers, and :func:`archlint.apply` (:mod:`.apply`)."""
