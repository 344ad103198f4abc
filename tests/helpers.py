"""Independent measurements the tests compare archlint against."""

from __future__ import annotations

import numpy as np
import onnx


def runtime_shapes(model: onnx.ModelProto, feed_shape) -> dict[str, tuple[int, ...]]:
    """Run the model in onnxruntime with every intermediate value exposed as an output, the
    first input fixed to ``feed_shape``; return each tensor's actual shape."""
    import onnxruntime as ort
    model = onnx.ModelProto.FromString(model.SerializeToString())
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, size in zip(dims, feed_shape):
        d.Clear()
        d.dim_value = size
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(model)
    produced = {o for n in model.graph.node for o in n.output if o}
    existing = {o.name for o in model.graph.output}
    for vi in inferred.graph.value_info:
        if vi.name in produced and vi.name not in existing:  # typed, but no shape: onnxruntime decides
            model.graph.output.append(onnx.helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed = {sess.get_inputs()[0].name: np.random.rand(*feed_shape).astype(np.float32)}
    return {n: tuple(v.shape) for n, v in zip(names, sess.run(names, feed))}


def measurable(model, ndim):
    """The model prepared for gradient-span measurement: weights 1/fan-in, biases 0, BatchNorm as
    identity, max pooling as average pooling, float64, eval mode."""
    import torch
    from torch import nn
    for m in list(model.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.modules.pooling._MaxPoolNd):
                avg = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[ndim]
                setattr(m, child_name, avg(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode))
            elif isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(m, child_name, nn.Identity())
    model = model.double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.conv._ConvNd):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    return model


def gradient_span(model, shape):
    """The empirical receptive field: weights 1/fan-in, biases 0, BatchNorm as identity, max
    pooling as average pooling, float64, constant input; the nonzero span, per spatial axis,
    of d(centre output position, all channels)/d(input)."""
    import torch
    model = measurable(model, len(shape) - 2)
    x = torch.full(shape, 0.5, dtype=torch.float64, requires_grad=True)
    y = model(x)
    centre = [s // 2 for s in y.shape[2:]]
    y[(0, slice(None), *centre)].sum().backward()  # every channel: a concat's field is its widest branch
    nz = x.grad[0].abs().sum(0).nonzero()
    if nz.numel() == 0:
        return centre, []
    return centre, [(int(nz[:, i].min()), int(nz[:, i].max())) for i in range(nz.shape[1])]


def gradient_spans(model, shape, positions):
    """:func:`gradient_span` at each of ``positions`` (output index tuples, one per spatial
    axis): per position, the nonzero span per axis of d(output at it, all channels)/d(input),
    or ``None`` where the unit sees no input. One batch element per position (BatchNorm is the
    identity, so the elements are independent): one forward and one backward pass for all."""
    import torch
    model = measurable(model, len(shape) - 2)
    x = torch.full((len(positions), *shape[1:]), 0.5, dtype=torch.float64, requires_grad=True)
    y = model(x)
    sum(y[(b, slice(None), *pos)].sum() for b, pos in enumerate(positions)).backward()
    spans = []
    for b in range(len(positions)):
        nz = x.grad[b].abs().sum(0).nonzero()
        spans.append(None if nz.numel() == 0 else [(int(nz[:, i].min()), int(nz[:, i].max()))
                                                   for i in range(nz.shape[1])])
    return spans


def analyze_torchscript_export(model, shape):
    """archlint's report of ``model`` exported through TorchScript (``dynamo=False``, opset 17)
    at input ``shape``, read back from memory."""
    import io
    import warnings

    import torch

    import archlint
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(*shape),), buf, dynamo=False, opset_version=17)
    return archlint.analyze(onnx.load_from_string(buf.getvalue()))
