"""Analyses over the graph IR: shapes, cost, receptive field. They never see onnx or torch."""
