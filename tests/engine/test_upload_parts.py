"""An upload's parts in memory: the CRC32C of a part's own buffer (no copy into bytes), and
the part buffers the sink reuses, which must never carry one part's bytes into another.

The parts' way to a real service, with its checksum check, is in `sources/test_s3_upload.py`.
"""

from __future__ import annotations

import os
from typing import Any

import google_crc32c
import pytest

from laden.engine.uploading import crc32c
from laden.engine.uploading.parts import PartSink


@pytest.mark.parametrize("length", [0, 1, 9, 4096, 3 * 1024 * 1024 + 5])
def test_crc32c_of_any_buffer_is_the_libraries(length: int) -> None:
    data = os.urandom(length)
    expected = google_crc32c.value(data)
    writable = bytearray(data)
    assert crc32c.of(data) == expected
    assert crc32c.of(writable) == expected
    assert crc32c.of(memoryview(writable)) == expected
    assert crc32c.of(memoryview(writable).toreadonly()) == expected
    assert crc32c.extend(0x1234, writable) == google_crc32c.extend(0x1234, data)
    if length > 10:
        assert crc32c.of(memoryview(writable)[3:-2]) == google_crc32c.value(data[3:-2])


def test_crc32c_is_taken_in_place_where_the_c_library_is() -> None:
    if google_crc32c.implementation != "c":
        pytest.skip("google-crc32c's pure-Python build: the copy is the only way")
    assert crc32c._in_place is not None  # noqa: SLF001 - which way it goes is the point


class _Upload:
    """What the sink asks of `UploadState`: the parts' ranges, and `send`."""

    def __init__(self, size: int, part_size: int, fail: set[int] = frozenset()) -> None:
        self.size, self.part_size, self.fail = size, part_size, set(fail)
        self.sent: dict[int, tuple[bytes, int, int]] = {}  # number -> body, crc, buffer id

    def part_at(self, offset: int) -> int:
        return offset // self.part_size + 1

    def part_range(self, number: int) -> tuple[int, int]:
        start = (number - 1) * self.part_size
        return start, min(start + self.part_size, self.size)

    def send(self, number: int, body: Any, crc: int) -> None:
        if number in self.fail:
            self.fail.discard(number)
            raise ConnectionError("the service went away")
        self.sent[number] = (bytes(body), crc, id(body))


def _write(sink: PartSink, data: bytes, start: int, end: int, chunk: int = 1000) -> None:
    buffer = bytearray(chunk)  # the connection's reused buffer
    for offset in range(start, end, chunk):
        n = min(chunk, end - offset)
        buffer[:n] = data[offset:offset + n]
        sink.write(memoryview(buffer)[:n], offset)


def test_part_buffers_are_reused_and_each_part_is_its_own_bytes() -> None:
    part, size = 4096, 3 * 4096 + 100  # three whole parts and a short last one
    data = os.urandom(size)
    upload = _Upload(size, part)
    sink = PartSink(upload)  # type: ignore[arg-type]
    for number in (1, 2, 3, 4):
        _write(sink, data, *upload.part_range(number))
    for number in (1, 2, 3, 4):
        start, end = upload.part_range(number)
        body, crc, _ = upload.sent[number]
        assert body == data[start:end]
        assert crc == google_crc32c.value(data[start:end])
    buffers = {upload.sent[n][2] for n in (1, 2, 3)}
    assert len(buffers) == 1  # one after the other: the same buffer each time
    assert upload.sent[4][2] not in buffers  # the short last part has one of its size


def test_a_part_whose_sending_failed_is_sent_again_whole() -> None:
    part, size = 4096, 2 * 4096
    data = os.urandom(size)
    upload = _Upload(size, part, fail={1})
    sink = PartSink(upload)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        _write(sink, data, 0, part)
    # The plan gives the part back; its next try writes it from its first byte again,
    # into the buffer the failed try gave back, and part 2 goes on beside it.
    _write(sink, data, 0, part // 2)
    _write(sink, data, part, size)
    _write(sink, data, part // 2, part)
    assert upload.sent[1][0] == data[:part]
    assert upload.sent[2][0] == data[part:]
    assert upload.sent[1][2] != upload.sent[2][2]  # in flight together: two buffers
