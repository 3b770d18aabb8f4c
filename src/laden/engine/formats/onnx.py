"""`.onnx`: a protobuf `ModelProto`, checked as wire format without onnx or protobuf.

The top level is walked field by field: every key a valid field number and wire type, every
length-delimited field inside the file, the walk ending exactly at the file's end, and the
fields a model needs there (ir_version, graph, opset_import) with the wire types ONNX gives
them. The graph is walked the same way one level down, so a damaged node or initializer
frame inside it is found too. Field contents (tensor bytes) are skipped, never read.
A model whose tensors live in external data files is checked as far as this file goes.
"""

from __future__ import annotations

from collections import Counter

from .reading import Broken, FileView, counted

KIND = "ONNX"
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
WIRE_NAMES = {VARINT: "varint", FIXED64: "64-bit", LENGTH: "length-delimited", FIXED32: "32-bit"}
MODEL_FIELDS = {
    1: ("ir_version", VARINT), 2: ("producer_name", LENGTH), 3: ("producer_version", LENGTH),
    4: ("domain", LENGTH), 5: ("model_version", VARINT), 6: ("doc_string", LENGTH),
    7: ("graph", LENGTH), 8: ("opset_import", LENGTH), 14: ("metadata_props", LENGTH),
    20: ("training_info", LENGTH), 25: ("functions", LENGTH),
}
GRAPH_FIELDS = {
    1: ("node", LENGTH), 2: ("name", LENGTH), 5: ("initializer", LENGTH),
    10: ("doc_string", LENGTH), 11: ("input", LENGTH), 12: ("output", LENGTH),
    13: ("value_info", LENGTH), 14: ("quantization_annotation", LENGTH),
    15: ("sparse_initializer", LENGTH), 16: ("metadata_props", LENGTH),
}
REQUIRED = (1, 7, 8)


class _Message:
    """What a walk over one message found: field counts, the first varints, the spans."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.values: dict[int, int] = {}
        self.spans: dict[int, tuple[int, int]] = {}


def check(view: FileView) -> tuple[str, str]:
    """(KIND, what the model holds); `Broken` when the file is not a whole ModelProto."""
    if view.size == 0:
        raise Broken("the file is empty")
    model = _walk(view, 0, view.size, MODEL_FIELDS, "the model")
    for number in REQUIRED:
        if not model.counts[number]:
            name = MODEL_FIELDS[number][0]
            raise Broken(f"the model has no {name} (field {number}): it is not an ONNX model, "
                         "or it is cut short")
    start, end = model.spans[7]
    graph = _walk(view, start, end, GRAPH_FIELDS, "the graph")
    return KIND, (f"IR version {model.values.get(1, 0)}, {counted(graph.counts[1], 'node')}, "
                  f"{counted(graph.counts[5], 'initializer')}")


def _walk(view: FileView, start: int, end: int, fields: dict[int, tuple[str, int]],
          where: str) -> _Message:
    found = _Message()
    offset = start
    while offset < end:
        at = offset
        key, offset = _varint(view, offset, end, where)
        number, wire = key >> 3, key & 7
        name, expected = fields.get(number, (f"field {number}", None))
        label = f"{name} (field {number})" if number in fields else name
        if number == 0:
            raise Broken(f"{where} has a field numbered 0 at byte {at:,}: this is not "
                         "protobuf, or it is damaged")
        if wire not in WIRE_NAMES:
            raise Broken(f"{where} has wire type {wire} at byte {at:,} (for {label}), which "
                         "ONNX never uses: the file is damaged")
        if expected is not None and wire != expected:
            raise Broken(f"{label} of {where} at byte {at:,} is {WIRE_NAMES[wire]}, not "
                         f"{WIRE_NAMES[expected]}")
        if wire == VARINT:
            value, offset = _varint(view, offset, end, where)
            found.values.setdefault(number, value)
        elif wire == LENGTH:
            length, offset = _varint(view, offset, end, where)
            if offset + length > end:
                bound = "the file has" if end == view.size else f"{where} ends at byte"
                total = f"{end:,} bytes" if end == view.size else f"{end:,}"
                raise Broken(f"{label} at byte {at:,} is {length:,} bytes long and would end "
                             f"at byte {offset + length:,}, but {bound} {total}")
            found.spans.setdefault(number, (offset, offset + length))
            offset += length
        else:
            offset += 8 if wire == FIXED64 else 4
            if offset > end:
                raise Broken(f"{label} at byte {at:,} runs past the end of {where}")
        found.counts[number] += 1
    return found


def _varint(view: FileView, offset: int, end: int, where: str) -> tuple[int, int]:
    data = view.read(offset, min(10, end - offset), f"a number in {where}")
    value = 0
    for index, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, offset + index + 1
    if len(data) < 10:
        raise Broken(f"{where} ends inside a number at byte {offset:,}: it is cut short")
    raise Broken(f"{where} has a number longer than 10 bytes at byte {offset:,}: it is damaged")
