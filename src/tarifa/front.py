"""The ASGI application ``tarifa serve`` runs: request bodies are read in the event loop, within a
size bound and a time limit, and only then is the WSGI application (``tarifa.wsgi``) run in a thread.

Why: a WSGI server hands a request to a thread as soon as its headers are in, and the thread then
waits for the body as long as the client likes (granian's ``wsgi.input`` has no read timeout and
cannot be interrupted). Here no thread waits for a client: a body that has not arrived in full within
TARIFA_BODY_TIMEOUT seconds is answered 408 and its connection closed, however many slow clients
there are, and health, call authorisation and the back office keep their threads.

How a request goes:

* a body that is there at once (a switch's authorisation request, a form) goes with its request to
  one of the worker's threads in one step: the fast path costs one hand-over to a thread, as the
  WSGI server's own did;
* a body whose first part comes without the rest -- as most clients send headers and body in two
  writes -- is awaited for up to ``bodies.GRACE`` (50 ms) more: a body in by then is served as above,
  with no admission and no slot, so slow clients holding every slot stop no ordinary POST;
* a body still incomplete after the grace (slow, or large) is admitted in a thread before the
  rest is waited for (``api/switch_endpoints.py``'s ``admit``: a valid token, a staff session -- the caller
  without one is answered 401 or sent to the log-in page, the rest unread) and then read here with
  the size limit of its path and the time left; a client that sends no byte of its body at all is
  answered 408 at the deadline (the first message is awaited directly: a task to watch it cost
  every request 17 µs);
* an announced body above its limit is answered 413 before a byte is read;
* a client that closes (or half-closes) before its whole body came is answered 400 if it still
  listens, and logged 400 -- never the server's 500 or a status 0.

The access log (TARIFA_ACCESS_LOG) is written here too, one line per request, every control
character of the request line and headers escaped, so a request cannot forge or hide log lines.
"""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import IO, Any, TypeVar

from tarifa.api import bodies

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WsgiApp = Callable[..., Iterable[bytes]]
Answer = tuple[int, list[tuple[str, str]], bytes]
T = TypeVar("T")

access = logging.getLogger("tarifa.access")


class _Gone(Exception):
    """The client closed (or half-closed) the connection before its body was in."""


def printable(text: str) -> str:
    """``text`` with every character outside printable ASCII, and the quote and backslash that
    delimit log fields, written as ``\\xNN`` (or ``\\uNNNN``): one request, one log line, and a
    terminal shows what was sent rather than obeying escape sequences in it."""
    out = []
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F and char not in '"\\':
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def _latin1(raw: bytes) -> str:
    return raw.decode("latin-1")


def environ_of(scope: Scope) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope, without its body."""
    raw_path = scope.get("raw_path")
    path = scope.get("path", "/")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": _latin1(scope.get("query_string", b"")),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "tarifa.raw_path": _latin1(raw_path) if raw_path else environ_path(path),
    }
    server = scope.get("server")
    if server:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = str(server[0]), str(server[1])
    else:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", "80"
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    for name, value in scope.get("headers", []):
        key = _latin1(name).upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = _latin1(value)
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def environ_path(path: str) -> str:
    return path.encode("utf-8").decode("latin-1")


class Front:
    """The ASGI application around a WSGI one (see the module's docstring)."""

    def __init__(
        self,
        app: WsgiApp,
        threads: int,
        readers: int,
        body_max: int,
        body_timeout: float,  # float-ok: seconds
        log: bool,
    ) -> None:
        from tarifa.api import switch_endpoints

        self.app = app
        # Bodies waited for at once per worker (TARIFA_WAITING_THREADS, half for the switch endpoints)
        # and per client (half of those): they hold no thread, but one client -- an address, a token --
        # must not hold every connection slot and every byte of buffer either.
        self.switch_slots = bodies.Slots(max(1, readers // 2))
        self.other_slots = bodies.Slots(max(1, readers - readers // 2))
        self.body_max = body_max
        self.body_timeout = body_timeout
        self.log = log
        self.pool = _Threads(threads)
        self._endpoints = switch_endpoints
        if log:
            _log_to_stderr()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        environ = environ_of(scope)
        status, sent = 0, 0
        try:
            status, sent = await self._answer(environ, receive, send)
        finally:
            if self.log:
                self._log(environ, status, sent, time.monotonic() - started)

    async def _answer(self, environ: dict[str, Any], receive: Receive, send: Send) -> tuple[int, int]:
        path = environ["PATH_INFO"]
        length = bodies.announced(environ)
        if length is None:
            return await _send(
                send,
                self._endpoints.refused(
                    path,
                    bodies.Refusal(
                        400,
                        "Bad request",
                        f"Content-Length {environ.get('CONTENT_LENGTH')!r} is refused: must be a whole number of bytes",
                    ),
                ),
            )
        if length > self.body_max:
            return await _send(send, self._endpoints.refused(path, bodies.too_large(length, self.body_max)))
        if length == 0:
            environ["wsgi.input"] = io.BytesIO(b"")
            return await self._run(environ, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        sink: IO[bytes] = io.BytesIO()
        try:
            first = await _within(receive(), deadline)  # no task of its own: this is every POST's path
            if first is None:
                return await _send(send, self._endpoints.refused(path, self._timed_out(0, length)))
            if first["type"] != "http.request":
                raise _Gone
            limit = self.body_max
            pending: asyncio.Future[Message] | None = None
            if first.get("more_body", False):
                # Not all there at once: the rest of an ordinary request follows within a few ms;
                # only a body still incomplete after bodies.GRACE counts as slow.
                sink.write(first.get("body", b""))
                pending = await self._grace(receive, sink, min(deadline, loop.time() + bodies.GRACE))
            if pending is not None:
                # Slow (or large): who sends it, before waiting for the rest (in a thread: the
                # database may be asked), and the limit of its path.
                try:
                    refused, key, limit = await self.pool.run(self._endpoints.admit, environ, path, self.body_max)
                    if refused is not None:
                        return await _send(send, refused)
                    if length > limit:
                        return await _send(send, self._endpoints.refused(path, bodies.too_large(length, limit)))
                    slots = self.switch_slots if self._switch(path) else self.other_slots
                    busy = await _take(slots, key)
                    if busy is not None:
                        return await _send(send, self._endpoints.refused(path, busy))
                    if length > bodies.IN_MEMORY or length < 0:
                        spool = tempfile.SpooledTemporaryFile(max_size=bodies.IN_MEMORY)  # noqa: SIM115 (closed below)
                        spool.write(sink.getvalue() if isinstance(sink, io.BytesIO) else b"")
                        sink.close()
                        sink = spool
                    try:
                        refusal = await self._read(None, receive, deadline, sink, length, limit, pending)
                    finally:
                        slots.give_back(key)
                finally:
                    pending.cancel()
            elif first.get("more_body", False):
                refusal = self._ended(sink, length)
            else:
                refusal = await self._read(first, receive, deadline, sink, length, limit)
            if refusal is not None:
                return await _send(send, self._endpoints.refused(path, refusal))
            got = sink.tell()
            sink.seek(0)
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = sink, str(got)
            environ.pop("HTTP_TRANSFER_ENCODING", None)  # the body is now whole, its length known
            return await self._run(environ, send)
        except _Gone:
            # The client closed (or half-closed) its side before the whole body came: answered 400
            # if it still listens, and logged as such either way -- never the server's 500.
            return await _send_if_listening(
                send,
                self._endpoints.refused(
                    path,
                    bodies.Refusal(
                        400,
                        "Bad request",
                        f"The connection was closed (or the body's chunked framing broken) after {sink.tell()} "
                        + (
                            f"of the {length} bytes its Content-Length announced."
                            if length > 0
                            else "bytes of its body."
                        ),
                    ),
                ),
            )
        finally:
            sink.close()

    def _switch(self, path: str) -> bool:
        return path == self._endpoints.AUTHORIZE_PATH or (
            path.startswith(self._endpoints.END_PREFIX) and path.endswith(self._endpoints.END_SUFFIX)
        )

    async def _read(
        self,
        first: Message | None,
        receive: Receive,
        deadline: float,  # float-ok: loop time
        sink: IO[bytes],
        length: int,
        limit: int,
        pending: Awaitable[Message] | None = None,
    ) -> bodies.Refusal | None:
        """Read the body into ``sink`` (its first message is ``first``, or ``pending`` gives the next
        one after what ``sink`` holds already) within ``limit`` bytes and by ``deadline``, or say why
        not."""
        if sink.tell() > limit:
            return bodies.Refusal(
                413, "Request body too large", f"The body is refused: it must be at most {limit} bytes"
            )
        message: Message | None = first
        if message is None and pending is not None:
            message = await _within(pending, deadline)
        while True:
            if message is None:
                return self._timed_out(sink.tell(), length)
            if message["type"] != "http.request":
                raise _Gone
            sink.write(message.get("body", b""))
            if sink.tell() > limit:
                return bodies.Refusal(
                    413, "Request body too large", f"The body is refused: it must be at most {limit} bytes"
                )
            if not message.get("more_body", False):
                return self._ended(sink, length)
            message = await _within(receive(), deadline)

    async def _grace(
        self,
        receive: Receive,
        sink: IO[bytes],
        until: float,  # float-ok: loop time
    ) -> asyncio.Future[Message] | None:
        """Read the rest of a body into ``sink`` until the loop's clock reaches ``until`` (at most
        bodies.IN_MEMORY bytes): None when it is all in, else the receiving of its next message
        (not cancelled: a message being received must not be lost)."""
        loop = asyncio.get_running_loop()
        while sink.tell() <= bodies.IN_MEMORY:
            waiting = asyncio.ensure_future(receive())
            try:
                async with asyncio.timeout_at(until):
                    message = await asyncio.shield(waiting)
            except TimeoutError:
                return waiting
            if message["type"] != "http.request":
                raise _Gone
            sink.write(message.get("body", b""))
            if not message.get("more_body", False):
                return None
            if loop.time() >= until:
                break
        return asyncio.ensure_future(receive())

    def _ended(self, sink: IO[bytes], length: int) -> bodies.Refusal | None:
        """The body's last message is in: whether it holds what its Content-Length announced."""
        if length > 0 and sink.tell() < length:
            return bodies.Refusal(
                400,
                "Bad request",
                f"The request body ended after {sink.tell()} of the {length} bytes its Content-Length announced.",
            )
        return None

    def _timed_out(self, got: int, length: int) -> bodies.Refusal:
        of = f" of the {length} announced" if length > 0 else ""
        return bodies.Refusal(
            408,
            "Request timeout",
            f"The request body did not arrive within "
            f"{self.body_timeout:g} seconds (TARIFA_BODY_TIMEOUT): "
            f"{got} bytes{of} came.",
        )

    async def _run(self, environ: dict[str, Any], send: Send) -> tuple[int, int]:
        """Run the WSGI application in a thread and send its answer (streamed when it streams)."""
        status, headers, chunks, rest = await self.pool.run(_call, self.app, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        sent = 0
        try:
            for chunk in chunks:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
            while rest is not None:
                more = await self.pool.run(_next, rest)
                if more is None:
                    break
                if more:
                    await send({"type": "http.response.body", "body": more, "more_body": True})
                    sent += len(more)
        finally:
            if rest is not None:
                await self.pool.run(_close, rest)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return status, sent

    def _log(self, environ: dict[str, Any], status: int, sent: int, seconds: float) -> None:  # float-ok: elapsed
        log_request(environ, status, sent, seconds)


def _log_to_stderr() -> None:
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False


def log_request(environ: dict[str, Any], status: int, sent: int, seconds: float) -> None:  # float-ok: elapsed
    """One access log line: address, request line as sent, status, bytes, milliseconds, user agent --
    every character outside printable ASCII escaped (``printable``)."""
    query = environ.get("QUERY_STRING", "")
    target = environ["tarifa.raw_path"] + (f"?{query}" if query else "")
    access.info(
        '%s - "%s %s %s" %d %d %.1fms "%s"',
        printable(environ.get("REMOTE_ADDR", "-")),
        printable(environ["REQUEST_METHOD"]),
        printable(target),
        printable(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
        status,
        sent,
        seconds * 1000,
        printable(environ.get("HTTP_USER_AGENT", "-")),
    )


class _Threads:
    """The worker's threads that run the application: a queue and ``count`` threads, each answer
    handed back to the event loop with ``call_soon_threadsafe`` -- the least a hand-over to a thread
    costs (a third less CPU per request than ``run_in_executor``'s ThreadPoolExecutor here)."""

    def __init__(self, count: int) -> None:
        self.jobs: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any], asyncio.AbstractEventLoop]
        ] = queue.SimpleQueue()
        for n in range(count):
            threading.Thread(target=self._work, name=f"tarifa-{n}", daemon=True).start()

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self.jobs.put((fn, args, done, loop))
        return done

    def _work(self) -> None:
        while True:
            fn, args, done, loop = self.jobs.get()
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the request's coroutine, which raises it
                loop.call_soon_threadsafe(_fail, done, exc)
            else:
                loop.call_soon_threadsafe(_succeed, done, result)


def _succeed(done: asyncio.Future[Any], result: Any) -> None:
    if not done.cancelled():
        done.set_result(result)


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.cancelled():
        done.set_exception(exc)


async def _take(slots: bodies.Slots, key: str) -> bodies.Refusal | None:
    """A place among ``slots`` for ``key``'s body, or why not -- after waiting up to
    ``bodies.WAIT_FOR_READER`` seconds for one, as a burst of a switch's simultaneous calls needs
    (each holds its place only while its body comes in). Asked again every 5 ms: the event loop must
    not block on the slots' lock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bodies.WAIT_FOR_READER
    while True:
        busy = slots.take(key, patience=0.0)
        if busy is None or loop.time() >= deadline:
            return busy
        await asyncio.sleep(0.005)


async def _within(waiting: Awaitable[Message], deadline: float) -> Message | None:  # float-ok: loop time
    """What ``waiting`` gives, or None when the loop's clock passes ``deadline`` first."""
    try:
        async with asyncio.timeout_at(deadline):
            return await waiting
    except TimeoutError:
        return None


async def _send(send: Send, answer: Answer) -> tuple[int, int]:
    status, headers, content = answer
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": content, "more_body": False})
    return status, len(content)


async def _send_if_listening(send: Send, answer: Answer) -> tuple[int, int]:
    """``_send``, to a client that may have gone: what was answered (or would have been) either way."""
    try:
        return await _send(send, answer)
    except Exception:  # noqa: BLE001 - the connection is gone: nothing more to do for it
        return answer[0], 0


def _call(
    app: WsgiApp, environ: dict[str, Any]
) -> tuple[int, list[tuple[bytes, bytes]], list[bytes], Iterator[bytes] | None]:
    """In a thread: the application's status, headers, and either its whole body (a list, as every
    ordinary Django response is) or the iterator that streams it."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(environ, start_response)
    if isinstance(result, list | tuple) or not getattr(result, "streaming", True):
        try:  # the whole body at once (an ordinary Django response; the lean endpoints' list)
            chunks, rest = [*written, *result], None
        finally:
            _close(result)
    else:
        iterator = iter(result)
        first = next(iterator, None)  # the application calls start_response by its first chunk at the latest
        chunks = [*written, *([first] if first is not None else [])]
        rest = _Closing(iterator, result) if first is not None else None
        if rest is None:
            _close(result)
    status_line, headers = started
    code = int(status_line.split(" ", 1)[0])
    return code, [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers], chunks, rest


class _Closing(Iterator[bytes]):
    """A response iterator that closes its iterable (PEP 3333: Django's request_finished) when done."""

    def __init__(self, iterator: Iterator[bytes], iterable: Iterable[bytes]) -> None:
        self.iterator, self.iterable = iterator, iterable

    def __next__(self) -> bytes:
        return next(self.iterator)

    def close(self) -> None:
        _close(self.iterable)


def _next(iterator: Iterator[bytes]) -> bytes | None:
    return next(iterator, None)


def _close(iterable: object) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


def logged(app: WsgiApp) -> WsgiApp:
    """``app`` with the access log written as the front writes it (for ``tarifa serve`` without the
    front, TARIFA_BODY_TIMEOUT=0): one escaped line per request."""
    _log_to_stderr()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.monotonic()
        seen: list[int] = [0]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[0] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = app(environ, start)
        environ.setdefault(
            "tarifa.raw_path", environ.get("RAW_URI", "").split("?", 1)[0] or environ.get("PATH_INFO", "")
        )
        sent = sum(len(chunk) for chunk in result) if isinstance(result, list) else -1
        log_request(environ, seen[0], sent, time.monotonic() - started)
        return result

    return application


def application_for(app: WsgiApp) -> Front:
    from tarifa import config

    return Front(
        app,
        threads=config.threads(),
        readers=config.waiting_threads(),
        body_max=config.body_max_bytes(),
        body_timeout=config.body_timeout(),
        log=config.access_log(),
    )
