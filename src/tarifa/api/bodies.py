"""Request bodies read within a size bound, and never by more threads than a worker can spare, so that
clients that send their body slowly (or never) cannot stop health, call authorisation or the back
office.

Why this exists: granian hands a WSGI request to one of its threads as soon as the headers are in,
and ``wsgi.input.read()`` then blocks that thread until the body has arrived, with no time limit
(granian's only read timeout is for headers). Eight connections that announced a body, sent a few
bytes and held on used to take every thread of the server. The defences, in order:

* the token is checked before reading any body on every API path that needs one (``api/switch_endpoints.py``),
  and a back-office POST other than the log-in form needs a staff session first (without one it is
  sent to the log-in page at once), so a client without either never makes a thread wait;
* a body larger than allowed (``Content-Length`` above the limit -- 64 KiB for the switch
  endpoints, 16 KiB for the log-in form --, or a chunked body that grows past it) is refused with
  413 -- before a byte is read when its length is announced;
* each worker runs TARIFA_THREADS + TARIFA_WAITING_THREADS threads (``tarifa serve``) of which only
  TARIFA_THREADS run the application at once (``api/switch_endpoints.py``'s gate); the bodies are read before
  the gate, and by at most ``Slots`` readers at once (half the waiting threads for the switch
  endpoints, half for everything else), of which one client -- a token, a staff user, an address --
  holds at most half: a request whose body would need one more reader is answered 503 at once.
  So slow clients can hold the waiting threads but never the threads that answer health,
  authorisation and pages without a body, and one slow or stolen token delays only its own calls.

What this cannot do: give up on a body after a few seconds. granian's ``wsgi.input`` has no read
timeout and its read cannot be interrupted; reading it in another thread, so that the request's
thread could stop waiting and answer 408, froze the whole worker process under granian 2.8 (a
granian thread then held the GIL while blocked). A thread that reads a slow body therefore waits
until the body arrives or the client goes. Behind a reverse proxy that buffers request bodies
(nginx's default), none of this is reached.
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
IN_MEMORY = 2_621_440  # bodies above this are spooled to a temporary file (Django's FILE_UPLOAD_MAX_MEMORY_SIZE)


@dataclass(frozen=True)
class Refusal:
    """Why a body was not read: an HTTP status, a problem title and a detail naming the rule."""

    status: int
    title: str
    detail: str


class Slots:
    """How many requests of a worker process may be reading their body at once (one thread each),
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
                return Refusal(503, "Server busy", f"This client ({key or 'unknown'}) already has {held} request "
                                                   f"bodies being read, at most {self.per_key} at once; "
                                                   "try again in a moment.")
            return Refusal(503, "Server busy", f"All {self.count} readers of request bodies are waiting for "
                                               "slow clients; try again in a moment.")

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
    return Refusal(413, "Request body too large",
                   f"Content-Length {length} is refused: the body must be at most {limit} bytes")


def read(environ: dict[str, Any], slots: Slots, limit: int, key: str = "") -> tuple[IO[bytes], int] | Refusal:
    """The whole body of the request (a file positioned at its start, and its length), or why not:
    at most ``limit`` bytes, read only while one of ``slots`` is free for ``key`` (who sends it)."""
    length = announced(environ)
    if length is None:
        return Refusal(400, "Bad request", f"Content-Length {environ.get('CONTENT_LENGTH')!r} is refused: "
                                           "must be a whole number of bytes")
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
        return Refusal(400, "Bad request", f"The request body ended after {got} of the {length} bytes "
                                           "its Content-Length announced.")
    sink.seek(0)
    return sink, got
