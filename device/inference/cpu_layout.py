"""An ONNX model laid out for the CPU that runs it: narrow channel groups padded to the CPU's
convolution block (float graphs) and the input taken as NCHW (the graph's input Transpose cut).

**Channel padding.**
ONNX Runtime runs float convolutions on x86 in a blocked layout (NCHWc): channels in blocks of 8
with AVX/AVX2, 16 with AVX-512. A tensor whose channel count is not a multiple of the block
leaves that layout: ONNX Runtime reorders it back to plain NCHW and the next convolution takes a
slower path. MobileNetV2 at width 0.35 has several (8 channels at strides 2 and 4, 24 at stride
16; trainer/model.py): on an AVX-512 box the demo model's 8-channel expansion at 480x352 alone
took 8.7 of a 49 ms pass (bench/graph_variants.py prints the whole effect).

The rewrite gives each such group of tensors zero channels up to the block: every convolution
that writes into the group gets zero filters (zero weights, zero bias: the new channels hold 0),
every residual `Add` inside it adds zeros to zeros, and every convolution that reads from it gets
zero weights for the new channels, so nothing downstream changes but the rounding order. A group
is padded only when everything touching it is one of those (a plain Conv with constant weights,
or an Add of two group members); anything else (an activation, a graph output, a shared weight)
leaves that group as it is. The padded graph is kept only when its outputs match the original's
on a random input (`TOLERANCE`); otherwise the original is used and the reason is given.

INT8 graphs run ONNX Runtime's integer kernels, which do not use that layout, and are not padded.

**NCHW input.** Keras graphs take NHWC and begin with a Transpose to NCHW: a pass over the whole
input inside the graph. When that Transpose is the input's only consumer, it is cut and the input
declared NCHW; the device's preprocessing then writes NCHW itself, which costs less (demo model,
a whole 1280x960 frame: 51.4 -> 49.2 ms CPU float, padded; 47.9 -> 46.2 ms INT8; bench/cpu_layout.py). The laid-out file says so in
its metadata (`INPUT_LAYOUT_KEY`), and the backend tells the detector which layout to feed. The
hive server pads but keeps the input as exported, since devices send it tensors in the card's layout.

The bundle is not touched: this is the device laying out the model for the CPU it runs on (like
a TensorRT engine for its GPU), cached by content beside the engines (`laid_out`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
TOLERANCE = 1e-3  # absolute and relative, per output (boxes are in pixels): the rewrite only reorders sums
INPUT_LAYOUT_KEY = "scopehive.input_layout"  # metadata of a laid-out file: the layout it takes when not the card's
NOTE_KEY = "scopehive.layout"  # metadata: what was done, for the log
_X86 = ("x86_64", "amd64", "i386", "i686")


def conv_block(cpu_flags: set[str] | None = None, machine: str | None = None) -> int | None:
    """The channel block of ONNX Runtime's float convolutions on this CPU (16 with AVX-512,
    8 with AVX), or None where it has no blocked layout (not x86)."""
    if (machine or platform.machine()).lower() not in _X86:
        return None
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    if "avx512f" in flags:
        return 16
    return 8


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@dataclass
class _Group:
    """Tensors that must be padded together, and the nodes that write and read them."""

    channels: int
    tensors: set[str] = field(default_factory=set)
    writers: list[Any] = field(default_factory=list)  # Conv nodes whose filters get zero rows
    readers: list[Any] = field(default_factory=list)  # Conv nodes whose weights get zero input channels


@dataclass(frozen=True)
class Padding:
    """What the rewrite did: `model` is the graph to run (the original when nothing was safe)."""

    model: Any  # onnx.ModelProto
    groups: int  # tensor groups padded
    note: str  # why nothing was padded, or "" when something was


def pad_channels(model: Any, block: int, seed: int = 0) -> Padding:
    """Every safely paddable group of `model`'s narrow tensors padded to a multiple of `block`."""
    import onnx

    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return Padding(model, 0, "an INT8 graph: its kernels do not use the blocked layout")
    padded = onnx.ModelProto()
    padded.CopyFrom(model)
    groups = _groups(padded, block)
    if not groups:
        return Padding(model, 0, f"every convolution's channels are already a multiple of {block}")
    _apply(padded, groups, block)
    problem = _differs(model, padded, seed)
    if problem:
        return Padding(model, 0, f"the padded graph's outputs differed ({problem}): kept the original")
    return Padding(padded, len(groups), "")


def _initializers(model: Any) -> dict[str, Any]:
    return {i.name: i for i in model.graph.initializer}


def _plain_conv(node: Any, inits: dict[str, Any], uses: dict[str, int]) -> bool:
    """A Conv with group 1 whose weights (and bias) are constants no other node uses."""
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return False
    if any(a.name == "group" and a.i != 1 for a in node.attribute):
        return False
    constants = [name for name in node.input[1:] if name]
    return all(name in inits and uses[name] == 1 for name in constants)


def _groups(model: Any, block: int) -> list[_Group]:
    graph = model.graph
    inits = _initializers(model)
    uses: dict[str, int] = defaultdict(int)
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            uses[name] += 1
            readers[name].append(node)
    writer = {out: node for node in graph.node for out in node.output}
    outputs = {o.name for o in graph.output}
    taken: set[str] = set()
    found = []
    for node in graph.node:
        if not _plain_conv(node, inits, uses) or node.output[0] in taken:
            continue
        channels = inits[node.input[1]].dims[0]
        if channels % block == 0:
            continue
        group = _grow(node, channels, writer, readers, outputs, inits, uses)
        if group is not None:
            taken |= group.tensors
            found.append(group)
    return found


def _grow(start: Any, channels: int, writer: dict[str, Any], readers: dict[str, list[Any]],
          outputs: set[str], inits: dict[str, Any], uses: dict[str, int]) -> _Group | None:
    """The group `start`'s output belongs to, or None when something in it cannot take padding."""
    group = _Group(channels)
    todo = [start.output[0]]
    group.writers.append(start)
    while todo:
        tensor = todo.pop()
        if tensor in group.tensors:
            continue
        if tensor in outputs:
            return None
        group.tensors.add(tensor)
        for node in readers[tensor]:
            if node.op_type == "Conv" and node.input[0] == tensor and _plain_conv(node, inits, uses):
                if node not in group.readers:
                    group.readers.append(node)
            elif node.op_type == "Add" and len(node.input) == 2 and not any(i in inits for i in node.input):
                for other in node.input:
                    if other in group.tensors or other in todo:
                        continue
                    source = writer.get(other)
                    if source is None or not _plain_conv(source, inits, uses) or inits[source.input[1]].dims[0] != channels:
                        return None
                    group.writers.append(source)
                    todo.append(other)
                todo.append(node.output[0])
            else:
                return None
    return group


def _apply(model: Any, groups: list[_Group], block: int) -> None:
    from onnx import numpy_helper

    inits = _initializers(model)

    def replace(name: str, array: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(array.astype(numpy_helper.to_array(inits[name]).dtype), name))

    padded_tensors: set[str] = set()
    for group in groups:
        extra = -group.channels % block
        for node in group.writers:
            weights = numpy_helper.to_array(inits[node.input[1]])
            replace(node.input[1], np.concatenate([weights, np.zeros((extra, *weights.shape[1:]), weights.dtype)]))
            if len(node.input) > 2 and node.input[2]:
                bias = numpy_helper.to_array(inits[node.input[2]])
                replace(node.input[2], np.concatenate([bias, np.zeros(extra, bias.dtype)]))
        for node in group.readers:
            weights = numpy_helper.to_array(inits[node.input[1]])
            zeros = np.zeros((weights.shape[0], extra, *weights.shape[2:]), weights.dtype)
            replace(node.input[1], np.concatenate([weights, zeros], axis=1))
        padded_tensors |= group.tensors
    # Shapes recorded for the padded tensors are now wrong: drop them (ONNX Runtime infers its own).
    kept = [v for v in model.graph.value_info if v.name not in padded_tensors]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


@dataclass(frozen=True)
class InputCut:
    """What `nchw_input` did: `model` takes NCHW when `cut`, else it is the original."""

    model: Any  # onnx.ModelProto
    cut: bool
    note: str  # why not, or "" when cut


def nchw_input(model: Any) -> InputCut:
    """`model` taking NCHW when its NHWC input's only consumer is a Transpose to NCHW, which is
    cut; else `model` itself and why not. Exact by construction: the feed is transposed instead."""
    import onnx

    graph = model.graph
    if len(graph.input) != 1 or len(graph.input[0].type.tensor_type.shape.dim) != 4:
        return InputCut(model, False, "not one 4-D input")
    name = graph.input[0].name
    readers = [n for n in graph.node if name in n.input]
    first = readers[0] if len(readers) == 1 else None
    perm = [list(a.ints) for a in first.attribute if a.name == "perm"] if first is not None else []
    if first is None or first.op_type != "Transpose" or perm != [[0, 3, 1, 2]] or name in {o.name for o in graph.output}:
        return InputCut(model, False, "the input is not read through one NHWC->NCHW Transpose")
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    graph = cut.graph
    node = next(n for n in graph.node if n.name == first.name and list(n.output) == list(first.output))
    for other in graph.node:
        other.input[:] = [name if i == node.output[0] else i for i in other.input]
    graph.node.remove(node)
    dims = graph.input[0].type.tensor_type.shape.dim
    n, h, w, c = (onnx.TensorShapeProto.Dimension() for _ in range(4))
    for new, old in zip((n, h, w, c), dims, strict=True):
        new.CopyFrom(old)
    del dims[:]
    dims.extend([n, c, h, w])
    return InputCut(cut, True, "")


def cpu_session(model: Any) -> Any:
    """An ONNX Runtime CPU session over an in-memory graph, quiet (for checking rewrites)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def random_feed(model: Any, seed: int) -> dict[str, np.ndarray]:
    """One random batch of one for the graph's first input (open dimensions set to 1)."""
    from onnx import helper

    tensor = model.graph.input[0]
    dims = [d.dim_value if d.dim_value > 0 else 1 for d in tensor.type.tensor_type.shape.dim]
    dtype = helper.tensor_dtype_to_np_dtype(tensor.type.tensor_type.elem_type)
    return {tensor.name: np.random.default_rng(seed).uniform(-1, 1, dims).astype(dtype)}


def _differs(original: Any, padded: Any, seed: int) -> str:
    """'' when every output of the two graphs agrees within TOLERANCE on one random input."""
    feed = random_feed(original, seed)
    try:
        ours = cpu_session(padded).run(None, feed)
    except Exception as exc:  # onnxruntime raises its own types for graphs it rejects
        return f"ONNX Runtime rejected it: {exc}"
    theirs = cpu_session(original).run(None, feed)
    for out, a, b in zip(original.graph.output, theirs, ours, strict=True):
        if a.shape != b.shape or not np.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE):
            return f"output {out.name}"
    return ""


def input_layout(metadata: dict[str, str], exported: str) -> str:
    """The layout a laid-out model takes (its metadata), else the card's."""
    value = metadata.get(INPUT_LAYOUT_KEY, exported)
    return value if value in ("NCHW", "NHWC") else exported


def laid_out(onnx_path: Path, cache_dir: Path, block: int | None, nchw: bool = True) -> tuple[Path, str]:
    """The model file to run on this CPU, and what was done to it (said in the log).

    The laid-out file is written once to `cache_dir` (named by the source file's content, the
    block and `nchw`) and reused; the original is returned when there is no block (not x86), nothing
    to change, a check failed, or `onnx` is not installed."""
    if block is None:
        return onnx_path, "as exported (no blocked convolution layout on this CPU)"
    try:
        digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    except OSError:
        return onnx_path, "as exported"  # ONNX Runtime, opening it, says what is wrong
    cache = cache_dir / f"{digest}_c{block}{'_nchw' if nchw else ''}.onnx"
    try:
        import onnx
    except ImportError:
        return onnx_path, "as exported (the onnx package is not installed)"
    if cache.is_file():
        try:
            meta = {p.key: p.value for p in onnx.load(str(cache), load_external_data=False).metadata_props}
            return cache, f"{meta.get(NOTE_KEY, 'laid out')} (cached)"
        except Exception:  # noqa: BLE001 - a damaged cache file is made again
            cache.unlink(missing_ok=True)
    try:
        model, note = _lay_out(onnx.load(str(onnx_path)), block, nchw)
    except Exception as exc:  # a damaged or unusual file: ONNX Runtime, loading the original, says what is wrong
        return onnx_path, f"as exported (the layout could not read the graph: {type(exc).__name__})"
    if model is None:
        return onnx_path, note
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.{threading.get_ident()}.partial")  # writers never share one
        partial.write_bytes(model.SerializeToString())
        partial.replace(cache)
    except OSError as exc:
        log.warning("cannot cache the laid-out model at %s (%s): running the exported one", cache, exc)
        return onnx_path, f"as exported (the layout could not be cached: {exc})"
    return cache, note


def _lay_out(model: Any, block: int, nchw: bool) -> tuple[Any | None, str]:
    """(the laid-out model, what was done) or (None, why nothing was)."""
    done, why = [], []
    padding = pad_channels(model, block)
    if padding.groups:
        model = padding.model
        done.append(f"{padding.groups} tensor groups padded to multiples of {block} channels")
    else:
        why.append(padding.note)
    cut = nchw_input(model) if nchw else InputCut(model, False, "")
    if cut.cut:
        model = cut.model
        done.append("input taken as NCHW (the graph's input Transpose cut)")
    elif nchw:
        why.append(cut.note)
    if not done:
        return None, "as exported (" + "; ".join(why) + ")"
    note = "; ".join(done)
    entries = {NOTE_KEY: note, **({INPUT_LAYOUT_KEY: "NCHW"} if cut.cut else {})}
    from onnx import helper

    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **entries})
    return model, note
