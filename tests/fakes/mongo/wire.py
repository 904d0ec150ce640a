"""MongoDB wire protocol framing: OP_MSG, and the legacy OP_QUERY/OP_REPLY pair that drivers
still use for the first ``hello``/``isMaster`` of a connection."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
CHECKSUM_PRESENT = 1
MORE_TO_COME = 1 << 1
MAX_MESSAGE_BYTES = 48_000_000
CODEC = CodecOptions(document_class=dict, tz_aware=False)


class ProtocolError(Exception):
    """A message the fake cannot parse; the connection is closed, as mongod does."""


@dataclass(slots=True)
class Request:
    """One command as received: which opcode, its request id, and the command document."""

    op_code: int
    request_id: int
    flags: int
    command: dict[str, Any]
    database: str


async def read_request(reader: asyncio.StreamReader) -> Request:
    """The next request on a connection (``IncompleteReadError`` when the peer closes)."""
    header = await reader.readexactly(HEADER.size)
    length, request_id, _, op_code = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_MESSAGE_BYTES:
        raise ProtocolError(f"bad message length {length}")
    body = await reader.readexactly(length - HEADER.size)
    if op_code == OP_MSG:
        flags, command = _parse_msg(body)
        return Request(op_code, request_id, flags, command, str(command.get("$db", "admin")))
    if op_code == OP_QUERY:
        namespace, command = _parse_query(body)
        return Request(op_code, request_id, 0, command, namespace.split(".", 1)[0])
    raise ProtocolError(f"opcode {op_code} is not supported (compression is not negotiated)")


def _parse_msg(body: bytes) -> tuple[int, dict[str, Any]]:
    """The flags and the body document, with every document sequence (kind 1) folded into it
    under its identifier, as the server does."""
    (flags,) = struct.unpack_from("<I", body)
    end = len(body) - (4 if flags & CHECKSUM_PRESENT else 0)
    offset, command, sequences = 4, None, {}
    while offset < end:
        kind = body[offset]
        offset += 1
        if kind == 0:
            (size,) = struct.unpack_from("<i", body, offset)
            command = bson.decode(body[offset:offset + size], CODEC)
            offset += size
        elif kind == 1:
            (size,) = struct.unpack_from("<i", body, offset)
            section_end = offset + size
            name_end = body.index(b"\0", offset + 4)
            identifier = body[offset + 4:name_end].decode()
            sequences[identifier] = bson.decode_all(body[name_end + 1:section_end], CODEC)
            offset = section_end
        else:
            raise ProtocolError(f"unknown OP_MSG section kind {kind}")
    if command is None:
        raise ProtocolError("OP_MSG without a body section")
    command.update(sequences)
    return flags, command


def _parse_query(body: bytes) -> tuple[str, dict[str, Any]]:
    name_end = body.index(b"\0", 4)
    namespace = body[4:name_end].decode()
    offset = name_end + 1 + 8  # numberToSkip, numberToReturn
    (size,) = struct.unpack_from("<i", body, offset)
    query = bson.decode(body[offset:offset + size], CODEC)
    if not namespace.endswith(".$cmd"):
        raise ProtocolError("OP_QUERY is only accepted for commands (removed in MongoDB 6.0)")
    if "$query" in query:  # a wrapped command with read preference
        query = query["$query"]
    return namespace, query


_REQUEST_IDS = iter(range(1, 2**31))


def encode_reply(request: Request, reply: dict[str, Any], flags: int = 0) -> bytes:
    """The reply to ``request`` in its own protocol: OP_MSG, or OP_REPLY for an OP_QUERY."""
    document = bson.encode(reply)
    request_id = next(_REQUEST_IDS)
    if request.op_code == OP_QUERY:
        payload = struct.pack("<iqii", 0, 0, 0, 1) + document
        return HEADER.pack(HEADER.size + len(payload), request_id, request.request_id,
                           OP_REPLY) + payload
    payload = struct.pack("<I", flags) + b"\0" + document
    return HEADER.pack(HEADER.size + len(payload), request_id, request.request_id,
                       OP_MSG) + payload
