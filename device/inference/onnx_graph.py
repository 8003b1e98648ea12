"""The inputs and outputs of a model.onnx (names, element types, shapes), read from its protobuf
without the `onnx` package or an inference session.

A device whose only backend is the hive (`hive.local_backend: none`) still needs to know what the
model's input is called and what outputs it answers with, and should not load the weights into
memory to learn it: the file is mapped and every field but those few is skipped by its length.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# ONNX TensorProto.DataType -> bytes per element (STRING and complex types are not model I/O here)
ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
# field numbers of onnx.proto3
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_TENSOR_NAME = 8
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_ELEM_TYPE, _TENSOR_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE = 1


class GraphError(ValueError):
    """A model.onnx whose protobuf cannot be read."""


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output; a dimension is None where the graph leaves it open (a named or
    unset dimension); `shape` is None when the graph gives no shape at all."""

    name: str
    elem_type: int
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class GraphIO:
    inputs: tuple[TensorInfo, ...]  # the real inputs (initializers listed as inputs are left out)
    outputs: tuple[TensorInfo, ...]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise GraphError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: an int for varints, the bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 2, 5):
            size = 8 if wire == 1 else 4 if wire == 5 else 0
            if wire == 2:
                size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise GraphError("field runs past the end of its message")
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise GraphError(f"unsupported protobuf wire type {wire}")
        yield number, value


def _text(value: int | memoryview) -> str:
    if isinstance(value, int):
        raise GraphError("a name field holds a number")
    return bytes(value).decode("utf-8", "replace")


def _message(value: int | memoryview) -> memoryview:
    if isinstance(value, int):
        raise GraphError("a message field holds a number")
    return value


def _dim(buf: memoryview) -> int | None:
    for number, value in _fields(buf):
        if number == _DIM_VALUE and isinstance(value, int):
            signed = value - (1 << 64) if value >= 1 << 63 else value
            return signed if signed > 0 else None
    return None


def _value_info(buf: memoryview) -> TensorInfo:
    name, elem_type, shape = "", 0, None
    for number, value in _fields(buf):
        if number == _VALUE_NAME:
            name = _text(value)
        elif number == _VALUE_TYPE:
            for t_number, t_value in _fields(_message(value)):
                if t_number != _TYPE_TENSOR:
                    continue
                for k, v in _fields(_message(t_value)):
                    if k == _TENSOR_ELEM_TYPE and isinstance(v, int):
                        elem_type = v
                    elif k == _TENSOR_SHAPE:
                        shape = tuple(_dim(_message(d)) for n, d in _fields(_message(v)) if n == _SHAPE_DIM)
    return TensorInfo(name, elem_type, shape)


def _graph(buf: memoryview) -> GraphIO:
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    initializers: set[str] = set()
    for number, value in _fields(buf):
        if number == _GRAPH_INPUT:
            inputs.append(_value_info(_message(value)))
        elif number == _GRAPH_OUTPUT:
            outputs.append(_value_info(_message(value)))
        elif number == _GRAPH_INITIALIZER:
            initializers.update(_text(v) for n, v in _fields(_message(value)) if n == _TENSOR_NAME)
    return GraphIO(tuple(i for i in inputs if i.name not in initializers), tuple(outputs))


def read_graph_io(path: Path) -> GraphIO:
    """The graph's inputs and outputs; GraphError for a file that is not an ONNX model."""
    if path.stat().st_size == 0:
        raise GraphError(f"{path}: empty file, not an ONNX model")
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            graphs = [_graph(_message(v)) for n, v in _fields(view) if n == _MODEL_GRAPH]
        finally:
            view.release()
    if not graphs or not graphs[-1].inputs or not graphs[-1].outputs:
        raise GraphError(f"{path}: no graph with inputs and outputs")
    return graphs[-1]
