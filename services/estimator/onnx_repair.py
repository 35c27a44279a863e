"""Graph surgery that makes the shipped ONNX files loadable and batchable in onnxruntime.

The OpenCV-zoo int8 files (YuNet, SFace) use block-wise `DequantizeLinear` on constant weights,
which onnxruntime rejects; folding those nodes into fp32 initializers is bit-exact because the
dequantisation of a constant is a pure function of initializers.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _dequantize(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, block: int
) -> np.ndarray:
    xf = x.astype(np.float32)
    zp = np.zeros_like(scale, dtype=np.float32) if zero_point is None else zero_point
    zp = zp.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return (xf - zp.reshape(())) * scale.astype(np.float32).reshape(())
    axis = axis % x.ndim
    if block > 0:
        # Block quantisation: each scale covers `block` consecutive elements along `axis`;
        # the last block may be shorter, hence the crop after repeating.
        s = np.repeat(scale.astype(np.float32), block, axis=axis)
        z = np.repeat(zp, block, axis=axis)
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(0, x.shape[axis])
        return (xf - z[tuple(idx)]) * s[tuple(idx)]
    shape = [1] * x.ndim
    shape[axis] = scale.size
    return (xf - zp.reshape(shape)) * scale.astype(np.float32).reshape(shape)


def fold_constant_dequantize(model: onnx.ModelProto) -> int:
    """Replace every DequantizeLinear whose inputs are all initializers; returns the count."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    keep: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    folded = 0
    for node in graph.node:
        ins = [n for n in node.input if n]
        if node.op_type == "DequantizeLinear" and all(n in inits for n in ins):
            x = numpy_helper.to_array(inits[ins[0]])
            scale = numpy_helper.to_array(inits[ins[1]])
            zp = numpy_helper.to_array(inits[ins[2]]) if len(ins) > 2 else None
            value = _dequantize(x, scale, zp, _attr(node, "axis", 1), _attr(node, "block_size", 0))
            new_inits.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
            folded += 1
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(new_inits)
    return folded


def drop_unused(model: onnx.ModelProto) -> None:
    """Drop initializers no node reads and graph inputs that are really initializers."""
    graph = model.graph
    used: set[str] = {o.name for o in graph.output}
    for node in graph.node:
        used.update(node.input)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                for sub in a.g.node:
                    used.update(sub.input)
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    init_names = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names and i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)


def set_default_opset(model: onnx.ModelProto, version: int) -> None:
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = version
            return
    model.opset_import.append(helper.make_opsetid("", version))


def make_batch_dynamic(model: onnx.ModelProto) -> None:
    """Name dim 0 of every input and output `N`; stale value_info would pin it back to 1."""
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    del model.graph.value_info[:]


def free_reshape_batch(model: onnx.ModelProto) -> int:
    """Reshapes of activations to a constant shape that starts with 1 (YuNet's heads: (1, -1,
    4) and alike) pin the batch to 1; a leading 0 copies the input's batch dim instead, which
    is the same shape at batch 1. Returns how many shape constants changed."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    changed: set[str] = set()
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[0] in inits:
            continue
        if _attr(node, "allowzero", 0):  # there 0 means an empty dim, not "copy"
            continue
        shape = inits.get(node.input[1])
        if shape is None or shape.name in changed:
            continue
        value = numpy_helper.to_array(shape).copy()
        if value.ndim == 1 and value.size > 1 and value[0] == 1:
            value[0] = 0
            shape.CopyFrom(numpy_helper.from_array(value, shape.name))
            changed.add(shape.name)
    return len(changed)


def repair_int8(raw: bytes, *, dynamic_batch: bool) -> bytes:
    model = onnx.load_from_string(raw)
    fold_constant_dequantize(model)
    drop_unused(model)
    set_default_opset(model, 13)
    if dynamic_batch:
        free_reshape_batch(model)
        make_batch_dynamic(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def with_dynamic_batch(raw: bytes) -> bytes:
    model = onnx.load_from_string(raw)
    make_batch_dynamic(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def io_spec(raw: bytes) -> dict[str, list[dict[str, object]]]:
    """Inputs/outputs with name, element type and dims (-1 where symbolic)."""
    model = onnx.load_from_string(raw)
    init_names = {i.name for i in model.graph.initializer}

    def describe(vi: onnx.ValueInfoProto) -> dict[str, object]:
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        return {"name": vi.name, "dtype": np.dtype(dtype).name, "dims": dims}

    return {
        "inputs": [describe(i) for i in model.graph.input if i.name not in init_names],
        "outputs": [describe(o) for o in model.graph.output],
    }
