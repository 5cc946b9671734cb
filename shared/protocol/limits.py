"""Explicit limits of one connection, sent to the client in ``welcome``.

Every number here is a decision, not a library default (DESIGN.md: limits are
explicit). The agent's WebSocket server applies ``max_frame_bytes`` as the
transport's ``max_size`` too, so an oversized frame is refused before it is
read into memory; the Connection checks again for any transport.
"""

from __future__ import annotations

import msgspec

__all__ = ["Limits"]


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # 1 MiB: a batch of 500 executions with their few-KiB tails fits; larger work is paged.
    max_frame_bytes: int = 1024 * 1024
    # 256 KiB of log bytes: base64 makes it 342 KiB, well inside one frame.
    max_log_chunk_bytes: int = 256 * 1024
    # Token bucket per connection: sustained requests per second and the burst allowed.
    requests_per_s: float = 50.0
    burst: int = 100
    # Requests a client may have waiting for replies at once (bounds agent memory).
    max_in_flight: int = 32
    # Records per history / query batch.
    max_batch: int = 500
    # Refused requests in a row (rate limited or malformed) before the agent closes: a flood.
    max_refused: int = 20
    # A client that sends no hello within this many seconds is closed.
    hello_timeout_s: float = 10.0
    # A login challenge older than this is expired.
    challenge_ttl_s: float = 30.0
    # Client side: a request with no reply after this many seconds fails with ``timeout``.
    request_timeout_s: float = 30.0
