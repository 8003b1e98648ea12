"""Rewrites of an exported model.onnx that make a pass cheaper and change no output.

Nearest 2x upsampling (trainer/model.py's `up16`, `up8`): Keras' UpSampling2D reaches ONNX through
tf2onnx as two rounds of Unsqueeze -> Tile -> Reshape with 5-D Transposes and shape arithmetic
between them: 40 nodes that ONNX Runtime runs outside its blocked convolution layout (Transpose,
Tile and the layout reorders around them took 15 % of the demo model's pass). Each such chain
becomes one `Resize` (nearest, `asymmetric`, `floor`: at exactly 2x every output pixel reads input
pixel i // 2, which is what the repeats compute), an operator ONNX Runtime keeps in that layout
and TensorRT and Triton run natively.

A chain is found by what it computes, not by how tf2onnx happened to spell it: from each
`.../Repeat/ExpandDims` node, the first tensor downstream that holds the input repeated 2x along
height and width (NCHW) on a random input is the chain's end. The rewritten graph is then run
against the original on a second random input and kept only when every output is identical;
otherwise the original is returned untouched and the reason is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from device.inference.cpu_layout import cpu_session, random_feed

_ENTRY = "/Repeat/ExpandDims"
_SEARCH = 40  # nodes followed downstream of an entry: one UpSampling2D is about 20


@dataclass(frozen=True)
class Rewrite:
    """What a rewrite did: `model` is the graph to ship (the original when nothing was safe)."""

    model: onnx.ModelProto
    replaced: int  # upsampling chains now one Resize each
    removed_nodes: int
    note: str  # why nothing was rewritten, or "" when something was


def upsampling_as_resize(model: onnx.ModelProto, seed: int = 0) -> Rewrite:
    """Every nearest 2x upsampling chain of `model` -> one Resize, checked output for output."""
    entries = [n for n in model.graph.node if n.op_type == "Unsqueeze" and n.name.endswith(_ENTRY)]
    if not entries:
        return Rewrite(model, 0, 0, "no upsampling chain in the graph")
    feed = random_feed(model, seed)
    ends = _chain_ends(model, entries, feed)
    if not ends:
        return Rewrite(model, 0, 0, "no chain computed a nearest 2x upsampling")
    rewritten = _replace(model, ends)
    check = random_feed(model, seed + 1)
    if not _same_outputs(model, rewritten, check):
        return Rewrite(model, 0, 0, "the rewritten graph's outputs differed: kept the original")
    return Rewrite(rewritten, len(ends), len(model.graph.node) - len(rewritten.graph.node), "")


def _downstream(model: onnx.ModelProto, start: onnx.NodeProto) -> Iterator[str]:
    """Tensors produced downstream of `start`, nearest first (graph order), at most _SEARCH nodes."""
    reached = set(start.output)
    seen = 0
    yield from start.output
    for node in model.graph.node:
        if seen >= _SEARCH:
            return
        if any(name in reached for name in node.input):
            reached.update(node.output)
            seen += 1
            yield from node.output


def _chain_ends(model: onnx.ModelProto, entries: list[onnx.NodeProto], feed: dict[str, np.ndarray]) -> dict[str, str]:
    """{end tensor: chain input} for every entry whose chain ends in X repeated 2x (NCHW)."""
    candidates = {entry.input[0]: list(_downstream(model, entry)) for entry in entries}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    wanted = sorted({name for x, names in candidates.items() for name in (x, *names)} - {o.name for o in model.graph.output})
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in wanted)
    session = cpu_session(probe)
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, feed), strict=True))
    ends: dict[str, str] = {}
    for x, downstream in candidates.items():
        source = values[x]
        if source.ndim != 4:
            continue
        expected = np.repeat(np.repeat(source, 2, axis=2), 2, axis=3)
        end = next((n for n in downstream if values[n].shape == expected.shape and np.array_equal(values[n], expected)), None)
        if end is not None and end not in {o.name for o in model.graph.output}:
            ends[end] = x
    return ends


def _replace(model: onnx.ModelProto, ends: dict[str, str]) -> onnx.ModelProto:
    """The graph with each end tensor computed by one Resize of its chain input; dead nodes dropped."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    scales = "scopehive_upsample2x_scales"
    graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scales))
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for end in node.output:
            if end in ends:  # the Resize stands where the chain's last node stood: graph order stays topological
                nodes.append(helper.make_node("Resize", [ends[end], "", scales], [end + "__resize"], name=end + "/Resize",
                                              mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    for node in nodes:  # every reader of a chain's end reads the Resize (a later chain's input too)
        for i, name in enumerate(node.input):
            if name in ends:
                node.input[i] = name + "__resize"
    del graph.node[:]
    graph.node.extend(_live(nodes, {o.name for o in graph.output}))
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(out)
    return out


def _live(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """The nodes some graph output depends on, in their order."""
    needed, keep = set(outputs), []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            keep.append(node)
            needed.update(name for name in node.input if name)
    return keep[::-1]


def _same_outputs(a: onnx.ModelProto, b: onnx.ModelProto, feed: dict[str, np.ndarray]) -> bool:
    ours, theirs = cpu_session(a).run(None, feed), cpu_session(b).run(None, feed)
    return len(ours) == len(theirs) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(ours, theirs, strict=True))
