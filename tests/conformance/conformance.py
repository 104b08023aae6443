#!/usr/bin/env python3
"""Protocol conformance test: a school's own client, written from docs/PROTOCOL.md alone.

It talks to a running Lectern server the way a third-party client would: JSON over a WebSocket
(the `websockets` library), join tokens minted here with PyJWT from the documented claims, and
WebRTC with aiortc, a stack independent of Lectern's (str0m) and of the browsers'. Nothing here
comes from the web client; where this test and the server disagree, the document decides.

The scenario (each step has its own deadlines; the whole run is bounded by --deadline):
  1. Two students join an ad-hoc room before the class starts and wait in the lobby; the
     instructor joins and sends `class_start`; the students are let in.
  2. The instructor publishes audio and video (`media_offer` -> `sfu_answer`); one student has
     already sent `media_start`, so the SFU offers it the tracks as they appear.
  3. Both students decode the instructor's video (its colour identifies the publisher) and
     audio (a tone), and hear who speaks (`active_speaker`).
  4. The instructor gives a student the stage (`stage_grant`); the presenter publishes video.
     Renegotiating its receiving connection is refused (`renegotiation_unsupported`: aiortc
     renumbers header extensions) without disturbing it, so, as PROTOCOL.md says, it starts over
     with a new connection whose first negotiation is its own offer (`media_start`, then
     `media_offer` at once). The instructor and the other student decode its video, and it
     receives the instructor again.
  5. A late joiner arrives during the presentation: one `sfu_offer` with two video m-lines; it
     decodes both videos.
  6. Everyone sends `leave`: `ack`, then `closing` with reason `left`, then close code 1000; the
     others see `participant_left` (after `stage_revoked` for the presenter).
  7. Keepalive: a silent connection outlives the idle timeout because the websockets library
     answers the server's Pings; a raw connection that never answers them is dropped.

Checked on every message along the way: only documented message types, no optional field sent
as null, event seqs increasing, one reply per request_id, no error without a request_id, ICE
candidates on every m-line of the SFU's SDP. A step that fails stops the run unless the later
steps do not need it (5, 6 and 7 run whatever happened before them).

Exit status 0 when every step passed, 1 otherwise. Usage (scripts/conformance.sh runs it):
  conformance.py --url http://127.0.0.1:PORT --secret HS256_SECRET
                 --ping-interval SECS --idle-timeout SECS
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import json
import math
import os
import secrets
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import av
import jwt
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

Message = dict[str, Any]

PROTOCOL_VERSION = 1
STEPS = 7

# Solid colours (Y, U, V) per publisher: a receiver checks that the video it decodes on a mid
# is the picture of the participant that `sfu_offer.tracks` names for that mid.
INSTRUCTOR_COLOUR = (200, 64, 192)
PRESENTER_COLOUR = (60, 192, 64)
COLOUR_TOLERANCE = 32
VIDEO_SIZE = (160, 120)

# Enough decoded media to call it flowing, not a lucky packet.
VIDEO_FRAMES = 10
AUDIO_FRAMES = 25  # 0.5 s of 20 ms frames with the tone in them

# Per-wait deadlines, in seconds. Generous: the machine is shared and the server a debug build.
REPLY = 10.0
MEDIA = 20.0


class ConformanceError(Exception):
    """The server did not do what docs/PROTOCOL.md says (or not within the deadline)."""


def log(text: str) -> None:
    print(f"conformance: {text}", flush=True)


def brief(msg: Message) -> str:
    """A message for an error text, without SDP bodies."""
    shown = {k: ("<sdp>" if k == "sdp" else v) for k, v in msg.items()}
    text = json.dumps(shown, separators=(",", ":"))
    return text if len(text) <= 300 else text[:300] + "..."


# ---- Test media ---------------------------------------------------------------------------------


class SolidVideoTrack(VideoStreamTrack):
    """Frames of one solid colour, 160x120 at aiortc's 30 fps pace."""

    def __init__(self, yuv: tuple[int, int, int]) -> None:
        super().__init__()
        self.yuv = yuv

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=VIDEO_SIZE[0], height=VIDEO_SIZE[1], format="yuv420p")
        for plane, value in zip(frame.planes, self.yuv):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(MediaStreamTrack):
    """A 400 Hz tone, 48 kHz mono, in 20 ms frames: loud enough to count as speech."""

    kind = "audio"
    RATE = 48_000
    SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        period = self.RATE // 400  # 120 samples; 8 whole periods per frame
        self.pcm = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * (i % period) / period)))
            for i in range(self.SAMPLES)
        )
        self.start: Optional[float] = None
        self.pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        else:
            self.pts += self.SAMPLES
            # Pacing the media clock, not waiting for a condition.
            await asyncio.sleep(max(0.0, self.start + self.pts / self.RATE - time.monotonic()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        plane = frame.planes[0]
        plane.update(self.pcm[: plane.buffer_size].ljust(plane.buffer_size, b"\0"))
        frame.pts = self.pts
        frame.sample_rate = self.RATE
        frame.time_base = Fraction(1, self.RATE)
        return frame


def centre_yuv(frame: av.VideoFrame) -> tuple[int, ...]:
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    values = []
    for plane in frame.planes:
        data = memoryview(plane)
        values.append(data[(plane.height // 2) * plane.line_size + plane.width // 2])
    return tuple(values)


def colour_matches(seen: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(seen, expected))


def audio_peak(frame: av.AudioFrame) -> int:
    if frame.format.name != "s16":
        return 0
    samples = memoryview(frame.planes[0]).cast("h")
    return max((abs(s) for s in samples[::8]), default=0)


@dataclass
class Received:
    """What one receiving mid has decoded so far."""

    mid: str
    kind: str
    frames: int = 0
    # Video: frames whose centre has the publisher's colour; audio: frames with the tone in them.
    good: int = 0
    last_colour: Optional[tuple[int, ...]] = None
    expected_colour: Optional[tuple[int, int, int]] = None


# ---- Join tokens --------------------------------------------------------------------------------


def mint_token(secret: str, pid: str, name: str, room: str, role: str) -> str:
    """A join token as PROTOCOL.md's Connecting section describes it: HS256, required claims."""
    now = int(time.time())
    claims = {
        "sub": pid,
        "name": name,
        "room": room,
        "role": role,
        "nbf": now - 1,
        "exp": now + 600,
        "iat": now,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


# ---- Clients ------------------------------------------------------------------------------------


class PingCountingConnection(ClientConnection):
    """websockets' client connection, counting the Pings the server sends (the library answers
    them itself, as PROTOCOL.md's Keepalive expects)."""

    pings_received = 0

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings_received += 1
        super().process_event(event)


class Client:
    """One participant: a WebSocket connection and, when it does media, one RTCPeerConnection."""

    def __init__(self, scenario: "Scenario", pid: str, name: str, role: str, room: str) -> None:
        self.scenario = scenario
        self.pid = pid
        self.name = name
        self.role = role
        self.room = room
        self.ws: Optional[PingCountingConnection] = None
        self.inbox: list[Message] = []
        self.changed = asyncio.Condition()
        self.closed = asyncio.Event()
        self.close_code: Optional[int] = None
        self.close_reason: Optional[str] = None
        self.next_request_id = 1
        self.last_seq = -1
        self.problems: list[str] = []
        self.tasks: list[asyncio.Task] = []
        self.ice_servers: list[Message] = []
        # Media.
        self.pc: Optional[RTCPeerConnection] = None
        self.tracks: dict[str, Message] = {}  # mid -> sfu_offer track object
        self.received: dict[str, Received] = {}  # mid -> decoded so far
        self.signaling = asyncio.Lock()
        self.offers: asyncio.Queue = asyncio.Queue()
        self.local_offer_pending = False
        self.offer_epoch = 0
        self.ignored_offers = 0
        self.leaving = False
        self.replied: set[int] = set()

    def __repr__(self) -> str:
        return self.pid

    # -- WebSocket --

    def token(self) -> str:
        return mint_token(self.scenario.secret, self.pid, self.name, self.room, self.role)

    async def connect(self) -> None:
        self.ws = await connect(
            f"{self.scenario.ws_base}/ws?room={self.room}",
            create_connection=PingCountingConnection,
            # The client sends no Pings of its own: only its Pongs keep a silent connection alive.
            ping_interval=None,
            open_timeout=REPLY,
            close_timeout=5,
            proxy=None,
        )
        self.tasks.append(asyncio.create_task(self.read(), name=f"{self.pid} reader"))
        self.tasks.append(asyncio.create_task(self.answer_offers(), name=f"{self.pid} offers"))

    async def join(self) -> Message:
        """Connects, sends `hello`, returns the `welcome` after checking what every welcome has."""
        await self.connect()
        await self.send({"type": "hello", "protocol_version": PROTOCOL_VERSION, "token": self.token()})
        index, welcome = await self.wait("welcome", lambda m: m["type"] in ("welcome", "error", "closing"))
        if welcome["type"] != "welcome":
            raise ConformanceError(f"{self}: hello refused: {brief(welcome)}")
        expect(
            welcome.get("protocol_version") == PROTOCOL_VERSION, f"{self}: welcome.protocol_version", welcome
        )
        expect(
            welcome.get("participant_id") == self.pid,
            f"{self}: welcome.participant_id is the token's sub",
            welcome,
        )
        expect(welcome.get("role") == self.role, f"{self}: welcome.role", welcome)
        expect(
            welcome.get("rejoined") is False, f"{self}: welcome.rejoined is false on a first join", welcome
        )
        snapshot = welcome.get("snapshot")
        expect(isinstance(snapshot, dict), f"{self}: a first join's welcome has a snapshot", welcome)
        expect(snapshot.get("room_id") == self.room, f"{self}: snapshot.room_id", welcome)
        expect("presenter" in snapshot, f"{self}: snapshot.presenter is always present", welcome)
        # media_config is "sent right after welcome" (when the server relays media), and so is an
        # active_speaker when someone speaks: accept those two in either order.
        _, config = await self.wait(
            "media_config after the welcome", lambda m: m["type"] != "active_speaker", start=index + 1
        )
        expect(config["type"] == "media_config", f"{self}: media_config right after the welcome", config)
        expect(
            isinstance(config.get("ice_servers"), list),
            f"{self}: media_config.ice_servers is an array",
            config,
        )
        self.ice_servers = config["ice_servers"]
        return welcome

    async def send(self, msg: Message) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(msg))

    async def read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                if not isinstance(frame, str):
                    self.problems.append("the server sent a binary frame (PROTOCOL.md: text frames only)")
                    continue
                try:
                    msg = json.loads(frame)
                except ValueError:
                    self.problems.append(f"a frame that is not JSON: {frame[:100]!r}")
                    continue
                if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                    self.problems.append(f"a frame that is not a typed JSON object: {frame[:100]!r}")
                    continue
                self.on_message(msg)
                async with self.changed:
                    self.inbox.append(msg)
                    self.changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            async with self.changed:
                self.changed.notify_all()

    def on_message(self, msg: Message) -> None:
        """Bookkeeping a client does for every message, in arrival order, and the checks that
        hold for every message."""
        kind = msg["type"]
        if kind not in SERVER_MESSAGES:
            self.problems.append(f"a message type PROTOCOL.md does not list: {brief(msg)}")
        for path in null_fields(msg):
            self.problems.append(f"an optional field sent as null ({'.'.join(path)}): {brief(msg)}")
        if kind in ("ack", "error") and "request_id" in msg:
            if msg["request_id"] in self.replied:
                self.problems.append(
                    f"a second ack or error for request_id {msg['request_id']}: {brief(msg)}"
                )
            self.replied.add(msg["request_id"])
        if kind == "event":
            seq = msg.get("seq")
            if not isinstance(seq, int) or seq <= self.last_seq:
                self.problems.append(
                    f"event seq {seq} does not increase (last {self.last_seq}): {brief(msg)}"
                )
            else:
                self.last_seq = seq
        elif kind in ("welcome", "snapshot") and isinstance(msg.get("snapshot"), dict):
            self.last_seq = max(self.last_seq, msg["snapshot"].get("seq", -1))
        elif kind == "error" and "request_id" not in msg:
            self.problems.append(f"an error without request_id: {brief(msg)}")
        elif kind == "sfu_answer":
            # An sfu_offer read after this is the SFU's offer after answering ours.
            self.local_offer_pending = False
        elif kind == "sfu_offer":
            if self.local_offer_pending:
                # PROTOCOL.md, media_answer: a client whose own media_offer is pending ignores
                # the sfu_offer; the SFU offers again after answering.
                self.ignored_offers += 1
            else:
                self.offers.put_nowait((msg, self.offer_epoch))

    async def wait(
        self,
        what: str,
        predicate: Callable[[Message], bool],
        *,
        start: int = 0,
        timeout: float = REPLY,
    ) -> tuple[int, Message]:
        """The first message at index >= start that matches, waiting up to `timeout`."""

        async def scan() -> tuple[int, Message]:
            async with self.changed:
                while True:
                    for i in range(start, len(self.inbox)):
                        if predicate(self.inbox[i]):
                            return i, self.inbox[i]
                    if self.closed.is_set():
                        raise ConformanceError(
                            f"{self}: the connection closed (code {self.close_code}, reason "
                            f"{self.close_reason!r}) before {what}; {self.recent(start)}"
                        )
                    await self.changed.wait()

        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            raise ConformanceError(
                f"{self}: no {what} within {timeout:.0f} s; {self.recent(start)}"
            ) from None

    def recent(self, start: int) -> str:
        tail = [brief(m) for m in self.inbox[start:] if m["type"] not in ("active_speaker",)][-6:]
        text = f"received since: [{', '.join(tail)}]"
        if self.problems:
            text += f"; problems: {self.problems}"
        return text

    async def send_request(self, msg: Message) -> tuple[int, int]:
        """Sends `msg` with a fresh request_id. Returns (request_id, index where the messages
        caused by the request start)."""
        rid = self.next_request_id
        self.next_request_id += 1
        start = len(self.inbox)
        await self.send({"request_id": rid, **msg})
        return rid, start

    async def reply(
        self, rid: int, what: str, start: int, *, error: Optional[str] = None
    ) -> tuple[int, Message]:
        """The ack (or, with `error`, the error with that code) for request `rid`."""
        index, reply = await self.wait(
            f"ack or error for {what} (request_id {rid})",
            lambda m: m["type"] in ("ack", "error") and m.get("request_id") == rid,
            start=start,
        )
        if error is None and reply["type"] != "ack":
            raise ConformanceError(f"{self}: {what} refused: {brief(reply)}")
        if error is not None and (reply["type"] != "error" or reply.get("code") != error):
            raise ConformanceError(f"{self}: {what} should get the error {error}, got {brief(reply)}")
        return index, reply

    async def request(self, msg: Message, *, error: Optional[str] = None) -> tuple[int, Message, int]:
        """Sends `msg` with a fresh request_id. Returns (index of the reply, reply, index where
        the messages caused by the request start). Expects an ack, or the error code `error`."""
        rid, start = await self.send_request(msg)
        index, reply = await self.reply(rid, msg["type"], start, error=error)
        return index, reply, start

    async def event(
        self, kind: str, predicate: Callable[[Message], bool] = lambda e: True, *, start: int = 0
    ) -> tuple[int, Message]:
        return await self.wait(
            f"event {kind}",
            lambda m: m["type"] == "event" and m["event"].get("kind") == kind and predicate(m["event"]),
            start=start,
        )

    # -- WebRTC --

    def new_peer_connection(self) -> RTCPeerConnection:
        # Only loopback ICE servers: the test has no network beyond this machine (and aiortc adds
        # a public STUN server unless told otherwise).
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.ice_servers
            if all(is_loopback_url(u) for u in s.get("urls", []))
        ]
        # max-bundle: PROTOCOL.md's "one bundled peer connection". (aiortc's default, balanced,
        # also loses a receiver: given an offer of audio, video, video, it leaves the second
        # video on a transport it discards while bundling, so that m-line never receives.)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.tracks = {}
        self.received = {}

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)
            received = Received(mid=mid, kind=track.kind)
            owner = self.tracks.get(mid, {}).get("participant_id")
            received.expected_colour = self.scenario.colours.get(owner)
            self.received[mid] = received
            self.tasks.append(asyncio.create_task(consume(track, received), name=f"{self.pid} mid {mid}"))

        self.pc = pc
        return pc

    async def answer_offers(self) -> None:
        """Answers the SFU's offers one at a time, in order."""
        while True:
            offer, epoch = await self.offers.get()
            async with self.signaling:
                if self.leaving:
                    continue
                if epoch != self.offer_epoch:
                    # Our own media_offer went out after this offer arrived: it won (PROTOCOL.md,
                    # media_answer), and the SFU offers again.
                    self.ignored_offers += 1
                    continue
                try:
                    await self.apply_offer(offer)
                except ConformanceError as e:
                    self.problems.append(str(e))
                except Exception as e:  # aiortc refused the SDP
                    self.problems.append(f"{self}: could not apply an sfu_offer: {e!r}")

    async def apply_offer(self, offer: Message) -> None:
        if self.pc is None:
            raise ConformanceError(f"{self}: an sfu_offer before this client sent media_start or media_offer")
        tracks = offer.get("tracks")
        if not isinstance(tracks, list):
            raise ConformanceError(f"{self}: sfu_offer without a tracks array: {brief(offer)}")
        for track in tracks:
            self.tracks[track["mid"]] = track
        self.check_candidates("sfu_offer", offer["sdp"])
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.request({"type": "media_answer", "sdp": self.pc.localDescription.sdp})

    def check_candidates(self, what: str, sdp: str) -> None:
        """PROTOCOL.md, media_offer: every m-line of an sfu_offer or sfu_answer carries the SFU's
        ICE candidates (a stopped m-line, port 0, carries no transport)."""
        sections: list[list[str]] = []
        for line in sdp.splitlines():
            if line.startswith("m="):
                sections.append([line])
            elif sections:
                sections[-1].append(line)
        for lines in sections:
            kind, port = lines[0][2:].split(" ")[:2]
            mid = next((line[len("a=mid:") :] for line in lines if line.startswith("a=mid:")), "?")
            if port != "0" and not any(line.startswith("a=candidate:") for line in lines):
                self.problems.append(f"{self}: {what} m-line {kind} mid {mid} has no a=candidate")

    async def media_start(self) -> None:
        """PROTOCOL.md media_start: a new RTCPeerConnection, then the SFU offers what it has."""
        async with self.signaling:
            self.new_peer_connection()
            await self.request({"type": "media_start"})

    async def publish(
        self, *, audio: bool, colour: tuple[int, int, int], fresh: bool = False, error: Optional[str] = None
    ) -> None:
        """PROTOCOL.md media_offer: sendonly transceivers; sfu_answer, then the ack.

        On the connection this client has (`fresh=False`), or (`fresh=True`) on a new
        RTCPeerConnection whose first negotiation is this offer: `media_start`, then the
        `media_offer` at once, ignoring any sfu_offer until the sfu_answer. That is what
        PROTOCOL.md asks of a client that numbers every offer afresh, as aiortc does. With
        `error`, expects the media_offer to be refused with that code."""
        self.local_offer_pending = True
        self.offer_epoch += 1
        try:
            async with self.signaling:
                if fresh and self.pc is not None:
                    await asyncio.wait_for(self.pc.close(), 5)
                    self.pc = None
                pc = self.pc or self.new_peer_connection()
                if audio:
                    pc.addTransceiver(ToneTrack(), direction="sendonly")
                pc.addTransceiver(SolidVideoTrack(colour), direction="sendonly")
                await pc.setLocalDescription(await pc.createOffer())
                if fresh:
                    start_rid, start = await self.send_request({"type": "media_start"})
                offer_rid, offer_start = await self.send_request(
                    {"type": "media_offer", "sdp": pc.localDescription.sdp}
                )
                if fresh:
                    await self.reply(start_rid, "media_start", start)
                ack_index, _ = await self.reply(offer_rid, "media_offer", offer_start, error=error)
                if error is not None:
                    return
                answers = [m for m in self.inbox[offer_start:ack_index] if m["type"] == "sfu_answer"]
                if len(answers) != 1:
                    raise ConformanceError(
                        f"{self}: expected one sfu_answer before the media_offer's ack, got {len(answers)}; "
                        f"{self.recent(offer_start)}"
                    )
                self.check_candidates("sfu_answer", answers[0]["sdp"])
                await pc.setRemoteDescription(RTCSessionDescription(sdp=answers[0]["sdp"], type="answer"))
        finally:
            self.local_offer_pending = False

    async def connected(self) -> None:
        pc = self.pc
        assert pc is not None

        async def until_connected() -> None:
            while pc.connectionState != "connected":
                if pc.connectionState in ("failed", "closed"):
                    raise ConformanceError(f"{self}: RTCPeerConnection {pc.connectionState}")
                changed = asyncio.Event()
                pc.once("connectionstatechange", changed.set)
                await changed.wait()

        try:
            await asyncio.wait_for(until_connected(), MEDIA)
        except asyncio.TimeoutError:
            raise ConformanceError(
                f"{self}: RTCPeerConnection not connected within {MEDIA:.0f} s (connection "
                f"{pc.connectionState}, ICE {pc.iceConnectionState}); problems: {self.problems}"
            ) from None

    async def decodes(self, publisher: str, kind: str, *, beyond: int = 0) -> Received:
        """Waits until this client has decoded enough of `publisher`'s `kind` track (`beyond`
        the count of good frames given)."""
        wanted = beyond + (VIDEO_FRAMES if kind == "video" else AUDIO_FRAMES)

        def progress() -> Optional[Received]:
            for mid, track in reversed(self.tracks.items()):
                if track.get("participant_id") == publisher and track.get("kind") == kind:
                    return self.received.get(mid)
            return None

        async def until_decoded() -> Received:
            while True:
                received = progress()
                if received is not None and received.good >= wanted:
                    return received
                await self.scenario.tick()

        try:
            return await asyncio.wait_for(until_decoded(), MEDIA)
        except asyncio.TimeoutError:
            received = progress()
            packets = await self.packets_received()
            pc = self.pc
            state = (
                f"connection {pc.connectionState}, ICE {pc.iceConnectionState}"
                if pc
                else "no peer connection"
            )
            raise ConformanceError(
                f"{self}: did not decode {wanted} good {kind} frames of {publisher} within "
                f"{MEDIA:.0f} s ({state}; tracks {sorted((m, t.get('participant_id'), t.get('kind')) for m, t in self.tracks.items())}; "
                f"decoded {received}; RTP packets per mid and SSRC {packets}; ignored offers {self.ignored_offers}; problems {self.problems})"
            ) from None

    async def packets_received(self) -> dict[str, dict[int, int]]:
        """For a failure report: RTP packets received, per mid and SSRC."""
        counts: dict[str, dict[int, int]] = {}
        if self.pc is None:
            return counts
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid is None or transceiver.receiver.track is None:
                continue
            report = await transceiver.receiver.getStats()
            counts[transceiver.mid] = {
                stats.ssrc: stats.packetsReceived for stats in report.values() if stats.type == "inbound-rtp"
            }
        return counts

    async def close(self) -> None:
        """Cleanup, also after a failure: peer connection, socket, tasks."""
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), 5)
            except Exception as e:
                log(f"{self}: closing the peer connection: {e!r}")
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception as e:
                log(f"{self}: closing the WebSocket: {e!r}")
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def consume(track: MediaStreamTrack, received: Received) -> None:
    """Pulls decoded frames from a received track and checks what is in them."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        received.frames += 1
        if received.kind == "video":
            received.last_colour = centre_yuv(frame)
            if received.expected_colour and colour_matches(received.last_colour, received.expected_colour):
                received.good += 1
        elif audio_peak(frame) > 1000:
            received.good += 1


@dataclass
class DeafOutcome:
    welcomed: bool = False
    pings: int = 0
    messages: list[str] = field(default_factory=list)  # types of the text messages received
    closing: Optional[Message] = None
    close_code: Optional[int] = None  # None: the socket ended without a close frame
    closed_after: Optional[float] = None  # seconds after the hello


class DeafClient:
    """A client that never answers Pings. The websockets library always answers them, so this
    one speaks the WebSocket framing (RFC 6455) itself over a plain TCP stream: it sends the
    upgrade and its hello, then only reads."""

    def __init__(self, scenario: "Scenario", pid: str, room: str) -> None:
        self.scenario = scenario
        self.pid = pid
        self.room = room
        self.outcome = DeafOutcome()

    def __repr__(self) -> str:
        return self.pid

    async def run(self) -> DeafOutcome:
        url = urlsplit(self.scenario.url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            key = base64.b64encode(secrets.token_bytes(16)).decode()
            writer.write(
                (
                    f"GET /ws?room={self.room} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            response = await reader.readuntil(b"\r\n\r\n")
            if not response.startswith(b"HTTP/1.1 101"):
                raise ConformanceError(f"{self}: the upgrade was refused: {response[:100]!r}")
            token = mint_token(self.scenario.secret, self.pid, "Deaf", self.room, "instructor")
            hello = {"type": "hello", "protocol_version": PROTOCOL_VERSION, "token": token}
            writer.write(masked_text_frame(json.dumps(hello).encode()))
            await writer.drain()
            sent = time.monotonic()
            while True:
                try:
                    opcode, payload = await read_ws_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if opcode == 0x9:
                    self.outcome.pings += 1  # and no Pong
                elif opcode == 0x8:
                    self.outcome.close_code = (
                        struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    )
                    break
                elif opcode == 0x1:
                    msg = json.loads(payload)
                    self.outcome.messages.append(msg["type"])
                    if msg["type"] == "welcome":
                        self.outcome.welcomed = True
                    elif msg["type"] == "closing":
                        self.outcome.closing = msg
            self.outcome.closed_after = time.monotonic() - sent
            return self.outcome
        finally:
            writer.close()


def masked_text_frame(data: bytes) -> bytes:
    """One client-to-server text frame (FIN, masked)."""
    mask = secrets.token_bytes(4)
    n = len(data)
    if n < 126:
        header = bytes([0x81, 0x80 | n])
    else:
        header = bytes([0x81, 0x80 | 126]) + struct.pack("!H", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def read_ws_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next whole message or control frame from the server (unmasked frames)."""
    opcode, payload = 0, b""
    while True:
        b0, b1 = await reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4) if b1 & 0x80 else b""
        data = await reader.readexactly(length)
        if mask:
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        frame_opcode = b0 & 0x0F
        if frame_opcode >= 0x8:  # control frames come whole, also between fragments
            return frame_opcode, data
        opcode = opcode or frame_opcode
        payload += data
        if b0 & 0x80:
            return opcode, payload


SERVER_MESSAGES = {
    "welcome",
    "replay_done",
    "snapshot",
    "event",
    "reaction",
    "ack",
    "error",
    "closing",
    "media_config",
    "sfu_answer",
    "sfu_offer",
    "chat_page",
    "attendance",
    "network_quality",
    "active_speaker",
    "poll_results",
    "quiz_progress",
}


def null_fields(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Fields set to null. PROTOCOL.md: the server omits optional fields without a value; the
    exceptions are snapshot.presenter and active_speaker.participant_id."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = path + (key,)
            if item is None:
                allowed = (key == "presenter" and path[-1:] == ("snapshot",)) or (
                    here == ("participant_id",) and value.get("type") == "active_speaker"
                )
                if not allowed:
                    found.append(here)
            else:
                found += null_fields(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += null_fields(item, path + (str(i),))
    return found


def is_loopback_url(url: str) -> bool:
    """`turn:127.0.0.1:3478?transport=udp` and the like."""
    rest = url.split(":", 1)[1] if ":" in url else url
    host = urlsplit("//" + rest.split("?", 1)[0]).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def expect(condition: bool, what: str, msg: Optional[Message] = None) -> None:
    if not condition:
        raise ConformanceError(f"expected {what}" + (f"; got {brief(msg)}" if msg is not None else ""))


def roster_entry(snapshot: Message, pid: str) -> Message:
    for entry in snapshot.get("roster", []):
        if entry.get("id") == pid:
            return entry
    raise ConformanceError(f"{pid} is not in the roster: {[e.get('id') for e in snapshot.get('roster', [])]}")


# ---- The scenario -------------------------------------------------------------------------------


@dataclass
class Scenario:
    url: str
    secret: str
    ping_interval: float
    idle_timeout: float
    room: str = field(default_factory=lambda: f"conformance-{secrets.token_hex(4)}")
    clients: list[Client] = field(default_factory=list)
    colours: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ws_base(self) -> str:
        return "ws" + self.url.removeprefix("http")

    async def tick(self) -> None:
        # Decoding progress is polled (frames arrive on aiortc's decoder threads and tasks); the
        # caller bounds the loop with a deadline.
        await asyncio.sleep(0.05)

    def client(self, pid: str, name: str, role: str, room: Optional[str] = None) -> Client:
        c = Client(self, pid, name, role, room or self.room)
        self.clients.append(c)
        return c

    async def step(self, number: int, title: str, body: Callable[[], Any], *, critical: bool) -> bool:
        log(f"step {number}/{STEPS}: {title}")
        began = time.monotonic()
        try:
            await body()
        except ConformanceError as e:
            self.failures.append(f"step {number} ({title}): {e}")
            log(f"step {number}/{STEPS} FAILED after {time.monotonic() - began:.1f} s: {e}")
            return not critical
        log(f"step {number}/{STEPS} ok ({time.monotonic() - began:.1f} s)")
        return True

    async def run(self) -> None:
        self.instructor = self.client("t-grace", "Grace", "instructor")
        self.ada = self.client("s-ada", "Ada", "student")  # given the stage in step 4
        self.bob = self.client("s-bob", "Bob", "student")
        self.cyd = self.client("s-cyd", "Cyd", "student")  # the late joiner
        # Alone in a room of its own, so the server has nothing to send it but Pings.
        self.keeper = self.client("t-keep", "Keeper", "instructor", room=self.room + "-keepalive")
        self.colours = {self.instructor.pid: INSTRUCTOR_COLOUR, self.ada.pid: PRESENTER_COLOUR}

        await self.keeper.join()
        self.keeper_silent_since = time.monotonic()
        # And one that never answers Pings, in a third room: the server must drop it.
        self.deaf = DeafClient(self, "t-deaf", self.room + "-deaf")
        self.deaf_task = asyncio.create_task(self.deaf.run(), name="t-deaf")

        steps = [
            (1, "lobby: students wait until the instructor sends class_start", self.lobby, True),
            (2, "the instructor publishes audio and video (media_offer)", self.instructor_publishes, True),
            (3, "two students decode the instructor's video and audio", self.students_receive, True),
            (4, "stage_grant: the presenter publishes video, the others decode it", self.presentation, True),
            (5, "a late joiner decodes the instructor's and the presenter's video", self.late_joiner, False),
            (6, "leave: ack, closing (left), close code 1000", self.leave, False),
            (7, "keepalive: the server's Pings are answered, a silent client stays", self.keepalive, False),
        ]
        for number, title, body, critical in steps:
            if not await self.step(number, title, body, critical=critical):
                log("stopping: the later steps need this one")
                break
        problems = list(dict.fromkeys(p for c in self.clients for p in c.problems))
        if problems:
            self.failures.append(f"protocol problems seen along the way: {problems}")

    # Step 1
    async def lobby(self) -> None:
        ada, bob, instructor = self.ada, self.bob, self.instructor
        welcome = await ada.join()
        snapshot = welcome["snapshot"]
        expect(snapshot.get("class_state") == "not_started", "an ad-hoc room starts not_started", welcome)
        me = roster_entry(snapshot, ada.pid)
        expect(
            me.get("in_lobby") is True, "a student who joins before the class starts is in the lobby", welcome
        )
        expect(me.get("can_speak") is False, "can_speak false in the lobby", welcome)
        expect(snapshot.get("chat") == [], "an empty chat in a lobby snapshot", welcome)
        # In the lobby, hands and media are refused with in_lobby.
        await ada.request({"type": "hand_raise"}, error="in_lobby")
        await ada.request({"type": "media_start"}, error="in_lobby")

        mark = len(ada.inbox)
        welcome = await bob.join()
        expect(
            roster_entry(welcome["snapshot"], bob.pid).get("in_lobby") is True, "Bob in the lobby", welcome
        )
        _, joined = await ada.event(
            "participant_joined", lambda e: e["participant"]["id"] == bob.pid, start=mark
        )
        expect(
            joined["event"]["participant"].get("in_lobby") is True,
            "participant_joined shows in_lobby",
            joined,
        )
        expect(
            joined["seq"] == welcome["snapshot"]["seq"],
            "the welcome's snapshot.seq is the participant_joined seq",
            joined,
        )

        marks = {c: len(c.inbox) for c in (ada, bob)}
        welcome = await instructor.join()
        snapshot = welcome["snapshot"]
        expect(
            roster_entry(snapshot, instructor.pid).get("in_lobby") is False,
            "staff never wait in the lobby",
            welcome,
        )
        for student in (ada, bob):
            expect(
                roster_entry(snapshot, student.pid).get("in_lobby") is True,
                f"{student} in the lobby in the instructor's snapshot",
                welcome,
            )
            await student.event(
                "participant_joined", lambda e: e["participant"]["id"] == instructor.pid, start=marks[student]
            )
        # Still in the lobby after the instructor came: only class_start (or admit) lets them in.
        for student in (ada, bob):
            expect(
                not any(
                    m["type"] == "snapshot" or m.get("event", {}).get("kind") == "class_started"
                    for m in student.inbox
                ),
                f"{student} not let in before class_start",
            )

        marks = {c: len(c.inbox) for c in (ada, bob, instructor)}
        ack_index, ack, start = await instructor.request({"type": "class_start"})
        index, started = await instructor.event("class_started", start=start)
        expect(index < ack_index, "the events a request caused come before its ack")
        expect(ack.get("seq") == started["seq"], "class_start's ack.seq is the class_started seq", ack)
        expect(started["event"].get("by") == instructor.pid, "class_started.by is the instructor", started)
        for student in (ada, bob):
            index, _ = await student.event("class_started", start=marks[student])
            _, snap = await student.wait(
                "snapshot after class_started", lambda m: m["type"] == "snapshot", start=index + 1
            )
            expect(
                snap["snapshot"].get("class_state") == "live",
                "the snapshot after class_started is live",
                snap,
            )
            expect(
                roster_entry(snap["snapshot"], student.pid).get("in_lobby") is False,
                f"{student} out of the lobby",
                snap,
            )

    # Step 2
    async def instructor_publishes(self) -> None:
        # Ada starts her media first: the room has no tracks yet, so no sfu_offer; the SFU offers
        # the instructor's tracks once they exist.
        await self.ada.media_start()
        await self.instructor.publish(audio=True, colour=INSTRUCTOR_COLOUR)
        _, ack, start = await self.instructor.request(
            {"type": "set_media", "media": {"mic": True, "camera": True, "screen": False}}
        )
        _, changed = await self.instructor.event(
            "media_changed", lambda e: e["participant_id"] == self.instructor.pid, start=start
        )
        expect(ack.get("seq") == changed["seq"], "set_media's ack.seq is the media_changed seq", ack)
        await self.instructor.connected()

    # Step 3
    async def students_receive(self) -> None:
        ada, bob, instructor = self.ada, self.bob, self.instructor
        await bob.media_start()
        for student in (ada, bob):
            await student.connected()
            video = await student.decodes(instructor.pid, "video")
            audio = await student.decodes(instructor.pid, "audio")
            log(
                f"  {student}: instructor video mid {video.mid} ({video.frames} frames, colour {video.last_colour}), audio mid {audio.mid} ({audio.frames} frames)"
            )
        for student in (ada, bob):
            await student.wait(
                f"active_speaker naming {instructor}",
                lambda m: m["type"] == "active_speaker" and m.get("participant_id") == instructor.pid,
                timeout=MEDIA,
            )

    # Step 4
    async def presentation(self) -> None:
        ada, bob, instructor = self.ada, self.bob, self.instructor
        marks = {c: len(c.inbox) for c in (ada, bob)}
        ack_index, ack, start = await instructor.request({"type": "stage_grant", "participant_id": ada.pid})
        index, granted = await instructor.event("stage_granted", start=start)
        expect(
            index < ack_index and ack.get("seq") == granted["seq"],
            "stage_granted before the ack, ack.seq its seq",
            ack,
        )
        expect(
            granted["event"].get("participant_id") == ada.pid
            and granted["event"].get("by") == instructor.pid,
            "stage_granted fields",
            granted,
        )
        for c in (ada, bob):
            await c.event("stage_granted", lambda e: e["participant_id"] == ada.pid, start=marks[c])
        # The presenter may publish camera. Renegotiating the connection that receives would be
        # the natural way, but aiortc numbers extensions afresh in every offer: PROTOCOL.md says
        # such an offer is refused with renegotiation_unsupported and changes nothing...
        before = (await ada.decodes(instructor.pid, "video")).good
        await ada.publish(audio=False, colour=PRESENTER_COLOUR, error="renegotiation_unsupported")
        await ada.decodes(instructor.pid, "video", beyond=before)
        # ...so the presenter starts over, with a peer connection whose first negotiation is its
        # own offer; the SFU then offers it the instructor's tracks again.
        await ada.publish(audio=False, colour=PRESENTER_COLOUR, fresh=True)
        await ada.request({"type": "set_media", "media": {"mic": False, "camera": True, "screen": False}})
        await ada.connected()
        for c in (instructor, bob):
            video = await c.decodes(ada.pid, "video")
            log(f"  {c}: presenter video mid {video.mid} ({video.frames} frames, colour {video.last_colour})")
        video = await ada.decodes(instructor.pid, "video")
        log(f"  {ada}: instructor video again, mid {video.mid} on its new connection ({video.frames} frames)")

    # Step 5
    async def late_joiner(self) -> None:
        cyd, ada, instructor = self.cyd, self.ada, self.instructor
        welcome = await cyd.join()
        snapshot = welcome["snapshot"]
        expect(snapshot.get("class_state") == "live", "the class is live for the late joiner", welcome)
        expect(snapshot.get("presenter") == ada.pid, "snapshot.presenter names the presenter", welcome)
        expect(
            roster_entry(snapshot, cyd.pid).get("in_lobby") is False,
            "a student joining a live class is not in the lobby",
            welcome,
        )
        # active_speaker comes right after a welcome when someone is speaking (the instructor's tone).
        welcome_index = cyd.inbox.index(welcome)
        _, speaker = await cyd.wait(
            "active_speaker after the welcome", lambda m: m["type"] == "active_speaker", start=welcome_index
        )
        expect(
            speaker.get("participant_id") == instructor.pid, "active_speaker names the instructor", speaker
        )
        expect(
            all(
                m["type"] in ("media_config", "active_speaker")
                for m in cyd.inbox[welcome_index + 1 : cyd.inbox.index(speaker)]
            ),
            f"{cyd}: active_speaker right after the welcome (only media_config before it)",
        )
        await cyd.media_start()
        _, offer = await cyd.wait(
            "sfu_offer after media_start", lambda m: m["type"] == "sfu_offer", timeout=MEDIA
        )
        videos = sorted(t["participant_id"] for t in offer.get("tracks", []) if t.get("kind") == "video")
        expect(
            videos == sorted([instructor.pid, ada.pid]),
            "one sfu_offer with both videos (two video m-lines)",
            offer,
        )
        await cyd.connected()
        for publisher in (instructor, ada):
            video = await cyd.decodes(publisher.pid, "video")
            log(
                f"  {cyd}: {publisher} video mid {video.mid} ({video.frames} frames, colour {video.last_colour})"
            )
        await cyd.decodes(instructor.pid, "audio")

    # Step 6
    async def leave(self) -> None:
        # The presenter first: the others see stage_revoked without `by`, then participant_left.
        order = [self.ada, self.cyd, self.bob, self.instructor]
        for i, leaver in enumerate(order):
            if leaver.closed.is_set():
                raise ConformanceError(
                    f"{leaver}: the connection closed before leave (code {leaver.close_code})"
                )
            others = [c for c in order[i + 1 :] if not c.closed.is_set()]
            marks = {c: len(c.inbox) for c in others}
            async with leaver.signaling:  # let a negotiation in flight finish, then answer no more offers
                leaver.leaving = True
            ack_index, ack, _ = await leaver.request({"type": "leave"})
            expect(
                isinstance(ack.get("seq"), int), f"{leaver}: leave's ack has the participant_left seq", ack
            )
            closing_index, closing = await leaver.wait(
                "closing after the leave ack", lambda m: m["type"] == "closing", start=ack_index + 1
            )
            expect(closing.get("reason") == "left", f"{leaver}: closing.reason left", closing)
            try:
                await asyncio.wait_for(leaver.closed.wait(), REPLY)
            except asyncio.TimeoutError:
                raise ConformanceError(
                    f"{leaver}: the server did not close the socket after closing"
                ) from None
            expect(
                closing_index == len(leaver.inbox) - 1,
                f"{leaver}: no message after closing",
                leaver.inbox[-1],
            )
            expect(
                leaver.close_code == 1000 and leaver.close_reason == "left",
                f"{leaver}: close code 1000 with reason text 'left', got {leaver.close_code} {leaver.close_reason!r}",
            )
            expect(
                not any(
                    m.get("event", {}).get("participant_id") == leaver.pid
                    and m["event"]["kind"] == "participant_left"
                    for m in leaver.inbox
                ),
                f"{leaver}: does not receive its own participant_left",
            )
            for other in others:
                index, left = await other.event(
                    "participant_left", lambda e: e["participant_id"] == leaver.pid, start=marks[other]
                )
                expect(
                    left["event"].get("reason") == "left" and left["seq"] == ack["seq"],
                    f"{other}: participant_left (left) with the ack's seq",
                    left,
                )
                if leaver is self.ada:
                    revoked_index, revoked = await other.event(
                        "stage_revoked", lambda e: e["participant_id"] == leaver.pid, start=marks[other]
                    )
                    expect(
                        revoked_index < index and "by" not in revoked["event"],
                        f"{other}: stage_revoked without by before participant_left",
                        revoked,
                    )
            log(f"  {leaver}: ack seq {ack['seq']}, closing left, close code {leaver.close_code}")

    # Step 7
    async def keepalive(self) -> None:
        keeper = self.keeper
        assert keeper.ws is not None
        # Silent for longer than the idle timeout, counted in Pings: each comes after
        # ping_interval of server silence.
        needed = math.ceil(self.idle_timeout / self.ping_interval) + 2

        async def enough_pings() -> None:
            while keeper.ws.pings_received < needed:
                if keeper.closed.is_set():
                    raise ConformanceError(
                        f"{keeper}: the server closed a connection that answered its Pings "
                        f"(code {keeper.close_code}, after {keeper.ws.pings_received} Pings)"
                    )
                await self.tick()

        deadline = needed * self.ping_interval + REPLY
        try:
            await asyncio.wait_for(enough_pings(), deadline)
        except asyncio.TimeoutError:
            raise ConformanceError(
                f"{keeper}: {keeper.ws.pings_received} Pings in {deadline:.0f} s, expected one per "
                f"{self.ping_interval:g} s of silence"
            ) from None
        silent = time.monotonic() - self.keeper_silent_since
        expect(
            silent > self.idle_timeout,
            f"the keepalive client silent for longer than the idle timeout ({silent:.1f} s)",
        )
        expect(
            not keeper.closed.is_set(),
            f"{keeper}: still connected after {silent:.1f} s of sending only Pongs",
        )
        await keeper.request({"type": "set_media", "media": {"mic": False, "camera": False, "screen": False}})
        log(
            f"  {keeper}: {keeper.ws.pings_received} Pings answered in {silent:.1f} s of silence; still connected"
        )

        # The client that never answers: closed without a closing after the idle timeout, or as
        # a slow consumer once a Ping is still unanswered when the next is due (its closing may
        # not arrive). Either way only after a Ping it could have answered.
        try:
            deaf = await asyncio.wait_for(self.deaf_task, self.idle_timeout + 2 * self.ping_interval + REPLY)
        except asyncio.TimeoutError:
            raise ConformanceError(
                f"{self.deaf}: a client that answers no Ping was not closed ({self.deaf.outcome})"
            ) from None
        expect(deaf.welcomed, f"{self.deaf}: a welcome for the raw client's hello ({deaf})")
        expect(deaf.pings >= 1, f"{self.deaf}: at least one Ping before the server closed ({deaf})")
        if deaf.closing is not None:
            expect(
                deaf.closing.get("reason") == "slow_consumer" and deaf.close_code in (None, 1013),
                f"{self.deaf}: only a slow_consumer closing (close code 1013) for an unanswered Ping ({deaf})",
            )
        log(
            f"  {self.deaf}: never answered: closed after {deaf.closed_after:.1f} s and {deaf.pings} Pings, "
            f"closing {deaf.closing and deaf.closing.get('reason')}, close code {deaf.close_code}"
        )

    async def cleanup(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        task = getattr(self, "deaf_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server's base URL, http://127.0.0.1:PORT")
    parser.add_argument("--secret", required=True, help="the server's auth.hs256_secret")
    parser.add_argument(
        "--ping-interval", type=float, default=20, help="the server's websocket.ping_interval_secs"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=45, help="the server's websocket.idle_timeout_secs"
    )
    parser.add_argument("--deadline", type=float, default=90, help="bound on the whole scenario, in seconds")
    args = parser.parse_args()

    scenario = Scenario(
        url=args.url.rstrip("/"),
        secret=args.secret,
        ping_interval=args.ping_interval,
        idle_timeout=args.idle_timeout,
    )
    began = time.monotonic()
    try:
        await asyncio.wait_for(scenario.run(), args.deadline)
    except asyncio.TimeoutError:
        scenario.failures.append(f"the scenario did not finish within {args.deadline:.0f} s")
    except ConformanceError as e:
        scenario.failures.append(str(e))
    finally:
        await scenario.cleanup()
    took = time.monotonic() - began
    if scenario.failures:
        log(f"FAILED in {took:.1f} s:")
        for failure in scenario.failures:
            log(f"  - {failure}")
        return 1
    log(f"all {STEPS} steps passed in {took:.1f} s")
    return 0


if __name__ == "__main__":
    status = asyncio.run(main())
    # aiortc's decoder threads end when their peer connection closes; if a close timed out, do
    # not let a thread keep the process (and the CI job) alive.
    stragglers = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if stragglers:
        log(f"threads still running after cleanup: {stragglers}; exiting anyway")
        sys.stdout.flush()
        os._exit(status)
    sys.exit(status)
