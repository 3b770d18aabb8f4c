"""Small model files written by hand from each format's specification, for the format checks.

No torch, numpy or onnx: the bytes are laid out here as those libraries lay them out, so the
tests know exactly where every tensor, header and frame is, and can cut or damage each one.
`pickle.dumps` makes the bytes of a checkpoint's data.pkl; nothing here loads a pickle.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

# -- safetensors ---------------------------------------------------------------------------


def safetensors(tensors: dict[str, tuple[str, list[int], bytes]] | None = None,
                header: dict[str, object] | None = None) -> bytes:
    """A .safetensors file: tensors as name -> (dtype, shape, bytes), laid out in order.

    `header` replaces the header the tensors would give (to describe them wrongly)."""
    if tensors is None:
        tensors = {"w": ("F32", [3, 4], bytes(range(48))), "b": ("BF16", [4], b"\x01" * 8)}
    described: dict[str, object] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        described[name] = {"dtype": dtype, "shape": shape,
                           "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header if header is not None else described).encode()
    text += b" " * (-len(text) % 8)  # the library pads its header to 8 bytes
    return struct.pack("<Q", len(text)) + text + data


# -- GGUF ----------------------------------------------------------------------------------


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf(version: int = 3, alignment: int = 32) -> bytes:
    """A GGUF v3 file: four metadata entries (a string, the alignment, an array of strings,
    an array of int32) and two tensors, F32 [4, 2] and Q8_0 [64]; the last ends the file."""
    metadata = [
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama"),
        _gguf_string("general.alignment") + struct.pack("<II", 4, alignment),
        _gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3)
        + b"".join(_gguf_string(t) for t in ("<s>", "</s>", "hello")),
        _gguf_string("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, 3)
        + struct.pack("<3i", 1, 3, 1),
    ]
    tensors = [("token_embd.weight", [4, 2], 0, bytes(range(32))),
               ("output.weight", [64], 8, bytes(68))]
    infos = b""
    data = b""
    for name, dims, ggml_type, raw in tensors:
        data += bytes(-len(data) % alignment)
        infos += (_gguf_string(name) + struct.pack("<I", len(dims))
                  + b"".join(struct.pack("<Q", d) for d in dims)
                  + struct.pack("<IQ", ggml_type, len(data)))
        data += raw
    head = (b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
            + b"".join(metadata) + infos)
    return head + bytes(-len(head) % alignment) + data


# -- PyTorch -------------------------------------------------------------------------------


TORCH_STRUCTURE = pickle.dumps({"w": ("storage", "0"), "b": ("storage", "1")}, protocol=2)
"""A stand-in for a checkpoint's data.pkl: a protocol 2 pickle, as torch.save writes one."""


def torch_zip(*, structure: bytes = TORCH_STRUCTURE) -> bytes:
    """A zip checkpoint as torch.save writes it: data.pkl, a version record, two storages."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("model/data.pkl", structure)
        archive.writestr("model/byteorder", b"little")
        archive.writestr("model/data/0", bytes(range(48)))
        archive.writestr("model/data/1", b"\x01" * 16)
        archive.writestr("model/version", b"3\n")
    return buffer.getvalue()


LEGACY_MAGIC_PICKLE = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e"
"""pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2): how a legacy checkpoint starts."""


def torch_legacy() -> bytes:
    return (LEGACY_MAGIC_PICKLE + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"little_endian": True}, protocol=2) + bytes(64))


# -- NumPy ---------------------------------------------------------------------------------


def npy(descr: str = "<f4", shape: tuple[int, ...] = (2, 3), data: bytes | None = None) -> bytes:
    """A version 1.0 .npy: magic, version, header length, the header dict padded to 64."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    if data is None:
        count = 1
        for n in shape:
            count *= n
        data = bytes(count * int(descr[2:]))
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1") + data


def npz(members: dict[str, bytes] | None = None, compressed: bool = False) -> bytes:
    members = members if members is not None else {
        "weights.npy": npy(), "bias.npy": npy("<i8", (3,)), "mask.npy": npy("|b1", (4,))}
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return buffer.getvalue()


# -- ONNX ----------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    """One protobuf field: a varint for an int, length-delimited for bytes."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def onnx(graph: bytes | None = None) -> bytes:
    """A ModelProto: ir_version 8, a producer, a graph (one Identity node, one initializer,
    an input and an output), opset 17. Fields in number order, as protobuf writes them."""
    if graph is None:
        node = field(1, b"x") + field(2, b"y") + field(3, b"n0") + field(4, b"Identity")
        initializer = (field(1, 3) + field(2, 1) + field(8, b"w")
                       + field(9, bytes(12)))  # dims, FLOAT, name, raw_data
        value_type = field(1, field(1, 1))  # TypeProto.tensor_type.elem_type = FLOAT
        graph = (field(1, node) + field(2, b"main") + field(5, initializer)
                 + field(11, field(1, b"x") + field(2, value_type))
                 + field(12, field(1, b"y") + field(2, value_type)))
    opset = field(1, b"") + field(2, 17)
    return field(1, 8) + field(2, b"laden-tests") + field(7, graph) + field(8, opset)


VALID = {
    "model.safetensors": safetensors,
    "model.gguf": gguf,
    "model.pt": torch_zip,
    "pytorch_model.bin": torch_zip,
    "arrays.npz": npz,
    "array.npy": npy,
    "model.onnx": onnx,
}
"""A valid file of each kind, by a name with its suffix."""
