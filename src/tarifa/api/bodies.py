"""Request bodies read within a size bound, and never by more readers than a worker allows, so that
clients that send their body slowly (or never) cannot stop health, call authorisation or the back
office.

Under ``tarifa serve`` the bodies are read before any of this, in granian's event loop, by the ASGI
front (``tarifa.front``): a body not in full within TARIFA_BODY_TIMEOUT seconds is answered 408,
and no thread waits for a client. The front admits a body that is not there at once before waiting
for it (``api/switch_endpoints.py``'s ``admit``) and counts the slow ones with the ``Slots`` below; what reaches
the WSGI application is a body already in memory (or a spooled file), which ``read`` here copies at
once. The defences, in order:

* the token is checked before reading any body on every API path that needs one (``api/switch_endpoints.py``),
  and a back-office POST other than the log-in form needs a staff session first (without one it is
  sent to the log-in page at once), so a client without either is never waited for;
* a body larger than allowed (``Content-Length`` above the limit -- 64 KiB for the switch
  endpoints, 16 KiB for the log-in form --, or a chunked body that grows past it) is refused with
  413 -- before a byte is read when its length is announced;
* slow bodies are waited for by at most ``Slots`` at once per worker (TARIFA_WAITING_THREADS: half
  for the switch endpoints, half for everything else), of which one client -- a token, a staff
  user, an address -- holds at most half: one more is answered 503 at once; a client that closes
  its connection gives its place back at once;
* a body that takes longer than TARIFA_BODY_TIMEOUT (default 10 s, for the whole body) is answered
  408 and its connection closed;
* only TARIFA_THREADS requests per worker run the application at once (``api/switch_endpoints.py``'s gate).

Run as a plain WSGI application (another WSGI server, without the front), ``read`` below reads
``wsgi.input`` itself with the same size and reader bounds, but cannot give up after a time: a WSGI
server's ``wsgi.input`` (granian's among them) has no read timeout and its read cannot be
interrupted, so such a reader waits until the body arrives or the client goes.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

CHUNK = 64 * 1024
WAIT_FOR_READER = 0.25  # seconds a request waits for a free reader before it is answered 503
GRACE = 0.05  # seconds the rest of a body that came in parts is awaited before it counts as slow:
# a client's second write (headers, then body) follows within a round trip -- well under 1 ms on
# loopback, a few ms on a LAN (not measured here; tests/security/test_slow_bodies.py sends them 5 ms
# apart); a request whose body is in within the grace is served without admission or a reader's slot
IN_MEMORY = 2_621_440  # bodies above this are spooled to a temporary file (Django's FILE_UPLOAD_MAX_MEMORY_SIZE)


@dataclass(frozen=True)
class Refusal:
    """Why a body was not read: an HTTP status, a problem title and a detail naming the rule."""

    status: int
    title: str
    detail: str


class Slots:
    """How many requests of a worker process may be reading their body at once (a thread each
    under a plain WSGI server; a connection and a buffer each under tarifa.front),
    and how many of them one client (a token, or an address) may hold: at most ``per_key``, so one
    slow or hostile client -- a stolen switch token, one address -- cannot take every reader and
    blocks at most its own requests. The count is per process (a thread pool's accounting, not
    business state)."""

    def __init__(self, count: int, per_key: int | None = None) -> None:
        self.count = count
        self.per_key = per_key if per_key is not None else max(1, count // 2)
        self._lock = threading.Condition()
        self._used = 0
        self._by_key: dict[str, int] = {}

    def take(self, key: str = "", patience: float = WAIT_FOR_READER) -> Refusal | None:  # float-ok: seconds
        """Take a reader for ``key``'s request, or say why not (503).

        A burst of fast requests (a switch's simultaneous calls) holds readers for microseconds
        each, so a request that finds none free waits up to ``patience`` seconds for one; readers
        held by slow clients stay held, and the request is then answered 503."""
        deadline = time.monotonic() + patience
        with self._lock:
            while True:
                held = self._by_key.get(key, 0)
                if held < self.per_key and self._used < self.count:
                    self._used += 1
                    self._by_key[key] = held + 1
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            if held >= self.per_key:
                return Refusal(
                    503,
                    "Server busy",
                    f"This client ({key or 'unknown'}) already has {held} request "
                    f"bodies being read, at most {self.per_key} at once; "
                    "try again in a moment.",
                )
            return Refusal(
                503,
                "Server busy",
                f"All {self.count} readers of request bodies are waiting for slow clients; try again in a moment.",
            )

    def give_back(self, key: str = "") -> None:
        with self._lock:
            self._used -= 1
            held = self._by_key.get(key, 1) - 1
            if held > 0:
                self._by_key[key] = held
            else:
                self._by_key.pop(key, None)
            self._lock.notify_all()


def announced(environ: dict[str, Any]) -> int | None:
    """The body's announced length: its Content-Length, -1 for a chunked body, 0 for no body, None
    for a Content-Length that is not a whole number (which the caller refuses)."""
    raw = environ.get("CONTENT_LENGTH")
    if raw:
        try:
            length = int(raw)
        except ValueError:
            return None
        return length if length >= 0 else None
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return -1
    return 0


def too_large(length: int, limit: int) -> Refusal:
    return Refusal(
        413, "Request body too large", f"Content-Length {length} is refused: the body must be at most {limit} bytes"
    )


def read(environ: dict[str, Any], slots: Slots, limit: int, key: str = "") -> tuple[IO[bytes], int] | Refusal:
    """The whole body of the request (a file positioned at its start, and its length), or why not:
    at most ``limit`` bytes, read only while one of ``slots`` is free for ``key`` (who sends it)."""
    length = announced(environ)
    if length is None:
        return Refusal(
            400,
            "Bad request",
            f"Content-Length {environ.get('CONTENT_LENGTH')!r} is refused: must be a whole number of bytes",
        )
    if length > limit:
        return too_large(length, limit)
    if length == 0:
        return io.BytesIO(b""), 0
    busy = slots.take(key)
    if busy is not None:
        return busy
    want = length if length > 0 else limit + 1
    sink: IO[bytes] = io.BytesIO() if want <= IN_MEMORY else tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 (the caller closes it)
    got = 0
    stream = environ["wsgi.input"]
    try:
        while got < want:
            chunk = stream.read(min(CHUNK, want - got))
            if not chunk:
                break
            sink.write(chunk)
            got += len(chunk)
    except OSError:
        pass  # a broken connection: answered below as a body cut short
    finally:
        slots.give_back(key)
    if got > limit:
        return Refusal(413, "Request body too large", f"The chunked body is refused: it must be at most {limit} bytes")
    if length > 0 and got < length:
        return Refusal(
            400,
            "Bad request",
            f"The request body ended after {got} of the {length} bytes its Content-Length announced.",
        )
    sink.seek(0)
    return sink, got
