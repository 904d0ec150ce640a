"""The media workers' IPC: frames, samples on the wire, errors across the process boundary."""

from __future__ import annotations

import asyncio
import socket

import pytest

from realtime.errors import AppError
from rooms.backend import MediaSample
from rooms.ipc import MAX_FRAME, FrameError, read_frame, write_frame
from rooms.sfu import SfuSettings
from rooms.workers import WorkerPool

#: An offer aiortc refuses (no ICE credentials).
BAD_OFFER = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
             "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
             "a=rtpmap:96 VP8/90000\r\na=mid:0\r\na=sendonly\r\n")


async def test_frames_round_trip_and_refuse_oversize() -> None:
    """Length-prefixed JSON objects; a frame announcing more than ``MAX_FRAME`` is refused."""
    left, right = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=left)
    peer_reader, peer_writer = await asyncio.open_unix_connection(sock=right)
    write_frame(writer, {"id": 1, "op": "sample", "args": {"sdp": "v=0\r\n" * 100}})
    assert await read_frame(peer_reader) == {"id": 1, "op": "sample",
                                             "args": {"sdp": "v=0\r\n" * 100}}
    peer_writer.write((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        await read_frame(reader)
    writer.close()
    with pytest.raises(asyncio.IncompleteReadError):
        await read_frame(peer_reader)
    peer_writer.close()


def test_samples_merge_and_survive_the_wire() -> None:
    """Two workers' samples merge (counters add up); JSON keeps every field."""
    one = MediaSample({"p1": {"tracks": []}}, {"s1": {"tracks": []}},
                      [("in", {"fps": 30.0})], {"video": 30}, {"audio": 1}, 2)
    two = MediaSample({"p2": {"tracks": []}}, {}, [("out", {"rtt_s": 0.01})],
                      {"video": 10, "audio": 50}, {}, 1)
    one.merge(MediaSample.from_wire(two.to_wire()))
    assert set(one.publications) == {"p1", "p2"} and set(one.subscriptions) == {"s1"}
    assert one.forwarded == {"video": 40, "audio": 50} and one.dropped == {"audio": 1}
    assert one.keyframes == 3 and one.observations[1] == ("out", {"rtt_s": 0.01})


async def test_worker_errors_arrive_as_app_errors_and_close_stops_it() -> None:
    """A refused offer in the worker is the service's ``invalid`` here; stopping the pool
    stops the process; calls afterwards answer ``unavailable``."""
    pool = WorkerPool(SfuSettings(), 1, ("warning", "console"))
    await pool.start()
    try:
        worker = pool.workers[0]
        assert worker.running and pool.status()["workers"][0]["pid"] == worker.pid
        with pytest.raises(AppError) as refused:
            await pool.publish("r", "p_1", BAD_OFFER, lambda: None)
        assert refused.value.code == "invalid" and "ICE" in refused.value.message
        assert "r" not in pool.pins  # nothing held: the pin went with the failure
        with pytest.raises(AppError) as unknown:
            await worker.call("format_disk")
        assert unknown.value.code == "invalid"
    finally:
        await pool.close()
    assert worker.proc is not None and worker.proc.returncode is not None
    with pytest.raises(AppError) as stopped:
        await worker.call("sample")
    assert stopped.value.code == "unavailable"
