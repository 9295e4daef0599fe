"""The protobuf wire format, just enough to walk an ONNX model's fields without parsing it.

`onnx.load` builds the whole message, weights included (a 1 GB model is 1 GB more memory);
reading field headers over a memory map and skipping each payload costs milliseconds and no
copy. Serving uses it to find a model's external data and to point onnxruntime at the weights
inside a verified single-file model; neither needs the `onnx` package. The memory-fit check
walks a stored model through ranged reads (any object indexable like bytes will do).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol, overload

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # the wire types ONNX uses


class Buffer(Protocol):
    """What the walk reads: a byte by index, a range by slice (mmap.mmap and bytes are ones)."""

    def __len__(self) -> int: ...

    @overload
    def __getitem__(self, key: int, /) -> int: ...

    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...


class Field(NamedTuple):
    number: int
    wire: int
    start: int  # a varint's value, else where the payload starts
    end: int  # the byte after the field
    begin: int  # where the field's key starts: buf[begin:end] is the whole field


def fields(buf: Buffer, start: int, end: int) -> Iterator[Field]:
    """The fields of the message in buf[start:end]; a bytes field's contents are skipped, never
    read (a weight is one such field). ValueError (or IndexError) when it is not protobuf."""
    position = start
    while position < end:
        begin = position
        key, position = varint(buf, position)
        number, wire = key >> 3, key & 7
        if number == 0:  # protobuf forbids it; zeros would otherwise walk as fields, byte by byte
            raise ValueError(f"field number 0 at byte {begin}")
        if wire == VARINT:
            value, position = varint(buf, position)
            if position > end:  # protobuf refuses it; read on, it would take the next field's
                raise ValueError(f"a varint runs past its message at byte {begin}")
            yield Field(number, wire, value, position, begin)
        elif wire == LEN:
            length, position = varint(buf, position)
            if position + length > end:
                raise ValueError(f"a field runs past its message at byte {position}")
            yield Field(number, wire, position, position + length, begin)
            position += length
        elif wire in (FIXED64, FIXED32):
            position += 8 if wire == FIXED64 else 4
            if position > end:
                raise ValueError(f"a field runs past its message at byte {begin}")
            yield Field(number, wire, position, position, begin)
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} at byte {position}")


def varint(buf: Buffer, position: int) -> tuple[int, int]:
    """The varint at `position` and the position after it."""
    value = shift = 0
    while True:
        byte = buf[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError(f"a varint longer than 10 bytes at byte {position}")


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_key(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


def encode_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a message, a string or bytes."""
    return encode_key(number, LEN) + encode_varint(len(payload)) + payload
