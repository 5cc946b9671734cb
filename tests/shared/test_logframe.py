"""The log frame format: round trips, incremental decoding, corruption named by offset."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.logframe import (
    HEADER,
    CorruptLog,
    Frame,
    FrameDecoder,
    Kind,
    Stream,
    decode_frames,
    encode_dropped,
    encode_frame,
    encode_header,
)


def test_frame_round_trip():
    """A data frame decodes to its stream, time and exact bytes."""
    data = encode_frame(Kind.DATA, Stream.STDERR, 1_700_000_000_123_456, b"\x00\xffhi\n")
    frames, used = decode_frames(data)
    assert used == len(data)
    assert frames == [Frame(Kind.DATA, Stream.STDERR, 1_700_000_000_123_456, b"\x00\xffhi\n")]
    assert frames[0].t == pytest.approx(1_700_000_000.123456)


def test_dropped_marker_carries_counts():
    """The DROPPED marker reports total, stdout and stderr dropped bytes."""
    (frame,), _ = decode_frames(encode_dropped(5, 30, 10, 20))
    assert frame.kind is Kind.DROPPED and frame.dropped == (30, 10, 20)


def test_incomplete_frame_is_left_for_later():
    """A truncated last frame is not decoded and not consumed."""
    whole = encode_frame(Kind.DATA, Stream.STDOUT, 1, b"abc") + encode_frame(
        Kind.DATA, Stream.STDOUT, 2, b"defg"
    )
    frames, used = decode_frames(whole[:-2])
    assert [f.data for f in frames] == [b"abc"] and used == HEADER.size + 3


def test_unknown_kind_is_corrupt_with_offset():
    """A header with an unknown kind raises CorruptLog naming the offset."""
    good = encode_frame(Kind.DATA, Stream.STDOUT, 1, b"x")
    bad = bytes([9]) + good[1:]
    with pytest.raises(CorruptLog, match=f"byte {len(good)}"):
        decode_frames(good + bad)


def test_oversized_length_is_refused_when_encoding():
    """Encoding a frame longer than any writer makes is our own misuse: ValueError."""
    with pytest.raises(ValueError):
        encode_header(Kind.DATA, Stream.STDOUT, 0, 1 << 40)


@given(
    st.lists(st.tuples(st.sampled_from([Stream.STDOUT, Stream.STDERR]), st.binary(max_size=50))),
    st.integers(min_value=1, max_value=17),
)
def test_incremental_decoder_matches_whole_decode(chunks, piece):
    """Feeding bytes in any pieces yields the same frames as decoding all at once."""
    blob = b"".join(encode_frame(Kind.DATA, s, i, d) for i, (s, d) in enumerate(chunks))
    dec = FrameDecoder()
    got: list[Frame] = []
    for i in range(0, len(blob), piece):
        got += dec.feed(blob[i : i + piece])
    assert got == decode_frames(blob)[0]
    assert dec.pending_bytes == 0
