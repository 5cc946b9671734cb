"""Sans-I/O framing between the supervisor and its clients over a Unix socket.

A message is a 4-byte big-endian length and a JSON object (msgspec). Requests
carry ``id`` and ``op`` and get exactly one response with the same ``id``
(``ok`` + ``result``, or ``error`` {code, message}); the supervisor also pushes
``{"event": "exit", "record": {...}}``. Bad bytes from the peer never raise out
of ``MessageReader.feed`` except as ``WireError`` naming what was wrong, which
closes that one connection.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import msgspec

from shared.errors import SquError

__all__ = ["MAX_MESSAGE_BYTES", "MessageReader", "WireError", "encode_message"]

_LEN = struct.Struct(">I")
# Far above any real message (a RunSpec with a big env is a few KiB) and far
# below anything that could hurt the supervisor's memory.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class WireError(SquError):
    code = "supervisor_protocol"

    def __init__(self, why: str) -> None:
        super().__init__(f"supervisor protocol error: {why}", why=why)


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.json.Decoder()


def encode_message(message: Any) -> bytes:
    """One framed message ready to write."""
    body = _encoder.encode(message)
    if len(body) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return _LEN.pack(len(body)) + body


class MessageReader:
    """Feed bytes as they arrive; get decoded JSON objects back."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        out: list[dict[str, Any]] = []
        while len(self._buffer) >= _LEN.size:
            (length,) = _LEN.unpack_from(self._buffer)
            if length > MAX_MESSAGE_BYTES:
                raise WireError(f"message of {length} bytes exceeds {MAX_MESSAGE_BYTES}")
            end = _LEN.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_LEN.size : end])
            del self._buffer[:end]
            try:
                message = _decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise WireError(f"undecodable message: {exc}") from None
            if not isinstance(message, dict):
                raise WireError("a message must be a JSON object")
            out.append(message)
        return out
