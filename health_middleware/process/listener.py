"""The probe port: every health path also served on a port of its own, so a probe
never waits behind the app's requests in the main port's backlog, worker pool or
event loop (``Health.listen``).

What answers: the same snapshot, through the same decision (``Snapshot.decide``), as
the main port. The listener never starts or revives the refresher (it only reports:
a dead or blocked refresher lets the snapshot expire, and every endpoint answers 503
here as on the main port) and never runs app code.

Where it runs: one daemon thread per process (``health-probe-port``) with an event
loop of its own, never the app's loop or its worker threads. Under several workers
each worker listens on the same port with ``SO_REUSEPORT`` and the kernel spreads the
probes' connections between them: each worker answers from its own snapshot, so a
worker whose loop is wedged fails the probes that reach it, as on the main port. (One
listener per instance would hide a wedged worker behind a healthy one, and would need
the master, which runs none of our code, or an election that dies with its worker.)
A process that is an instance of its own binds without ``SO_REUSEPORT``, so a port
already taken fails at once.

The machinery: asyncio streams on that private loop, and the standard library's
``http.server.BaseHTTPRequestHandler.parse_request`` to read the request head
(request line, version, ``http.client.parse_headers``, the keep-alive rules and its
own 400/431/505 answers). Not ``http.server.ThreadingHTTPServer``: it starts a thread
per connection (unbounded), and with a fixed pool of blocking threads instead, fifty
slow-loris connections sending a byte a second would hold every thread and starve the
probes. On one loop each connection is a coroutine: a slow client costs a buffer and a
timer, never a thread. The bounds:

- one thread; at most ``MAX_CONNECTIONS`` connections: a new one past the cap evicts
  the connection that has waited longest for a request (an idle keep-alive or a client
  that sends nothing), so no client can hold the port by opening connections, and a
  new one is refused only when every connection is busy answering;
- pipelined requests are answered one at a time with a turn for every other
  connection between two, so one client's pipeline never starves the probes;
- the request head (line and headers) must arrive whole within ``READ_TIMEOUT``
  seconds of the connection being ready for it (a keep-alive idle wait included), and
  be at most ``MAX_HEAD`` bytes (else 431), at most 99 headers (else 431: the
  library counts the blank line);
- keep-alive (HTTP/1.1, or HTTP/1.0 asking for it); pipelined requests answered in
  order; a request with a body is answered and its connection closed;
- GET and HEAD (405 otherwise), 404 for any other path, 400 for a malformed request;
- the pre-stop endpoint, where configured, answers here too, through the same
  decision (GET or POST with the token drains, then answers after its delay: a
  coroutine waits, no thread is held), so the kubelet's ``preStop`` reaches a pod
  whose main port is saturated. Drop it from the probe port by not routing
  ``preStop`` to it; it needs the token either way.

The watch (``Health.listen(watch=...)``, opt-in): a separate port can hide a main port
that no longer accepts or answers, so the listener's loop also requests a health path
through the main port every ``Watch.interval`` seconds, on a new connection, and calls
``Watch.beat`` (a heartbeat's) whenever any HTTP status line comes back within the
interval; the heartbeat's check fails liveness once the answers stop. Until the first
answer it tries four times a second (the main port may open after the probe port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

from health_middleware.config.validation import StartError
from health_middleware.engine.engine import Engine
from health_middleware.instance import folder
from health_middleware.instance.master import Instance
from health_middleware.process.protocol import (
    Head,
    encode,
    malformed_fields,
    target,
    valid_host,
    valid_length,
)
from health_middleware.process.watch import Watch
from health_middleware.web.response import prepare

logger = logging.getLogger("health_middleware")

READ_TIMEOUT = 5.0  # seconds for a whole request head (or a keep-alive idle wait)
MAX_HEAD = 8192  # bytes of request line and headers
MAX_CONNECTIONS = 256
BACKLOG = 128
LINGER = 1.0  # seconds to read and drop what a refused client still sends
_LINGER_BYTES = 1 << 20

NOT_FOUND = prepare(404, "text/plain; charset=utf-8", b"not found\n")
BAD_REQUEST = prepare(400, "text/plain; charset=utf-8", b"bad request\n")
TOO_LARGE = prepare(431, "text/plain; charset=utf-8", b"request header fields too large\n")


class ListenError(StartError, OSError):
    """The probe port could not be opened; the message names it."""


def bind(host: str, port: int, *, share: bool) -> socket.socket:
    """A listening socket on ``host:port`` (``share``: with ``SO_REUSEPORT``)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if share:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise ListenError(f"cannot listen on the probe port {host}:{port}: {exc}") from exc
    return sock


def refuse_if_served(address: tuple[str, int], owner: Instance) -> None:
    """Mark the probe port as ``owner``'s, or raise ``ListenError`` where another live
    server serves it: ``SO_REUSEPORT`` would let the workers of two servers given one
    port silently split its probes (``instance.folder.claim_port``, best effort)."""
    try:
        other = folder.claim_port(address[1], owner)
    except OSError as exc:  # untrusted, missing or not a folder
        logger.error(
            "the probe port's owner cannot be recorded (%s): it is shared without "
            "checking that no other server serves it",
            exc,
        )
        return
    if other is not None:
        raise ListenError(
            f"cannot listen on the probe port {address[0]}:{address[1]}: another server "
            f"(master pid {other.pid}) serves it; give each server a port of its own"
        )


class ProbeListener:
    """This process's probe port: bound by ``start`` (which raises ``ListenError``),
    served on a thread of its own until ``stop``."""

    def __init__(
        self, source: Engine, host: str, port: int, *, share: bool, watch: Watch | None = None
    ) -> None:
        self._source = source
        self._watch = watch
        self.host = host
        self.port = port
        self.share = share
        self.pid = os.getpid()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()  # bound to the listener's loop on first use
        self._tasks: set[asyncio.Task[Any]] = set()
        # Connections waiting for a request head, oldest first: evicted at the cap.
        self._idle: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port chosen by the system, for port 0)."""
        sock = self._sock
        if sock is None:
            return self.host, self.port
        found = sock.getsockname()
        return str(found[0]), int(found[1])

    def alive(self) -> bool:
        thread = self._thread
        return self.pid == os.getpid() and thread is not None and thread.is_alive()

    def start(self) -> None:
        self._sock = bind(self.host, self.port, share=self.share)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="health-probe-port", daemon=True)
        self._thread.start()
        logger.info("serving the health endpoints on the probe port %s:%s", *self.address)

    def stop(self, timeout: float = 2.0) -> None:
        """Close the port and its connections; wait for the thread (bounded)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self.pid != os.getpid():
            return
        with contextlib.suppress(RuntimeError):  # its loop has closed already
            loop.call_soon_threadsafe(self._stopping.set)
        if thread is not threading.current_thread():
            thread.join(timeout)

    def forget(self) -> None:
        """In a forked child: close the inherited listening socket, so the port is
        the parent's alone (the child opens its own when its runtime starts)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()  # this process's descriptor only: the parent keeps listening

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except Exception:
            logger.exception("the probe port stopped")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            if self._sock is not None:
                self._sock.close()

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._connection, sock=self._sock, limit=MAX_HEAD)
        watching = None if self._watch is None else asyncio.create_task(self._watch.run())
        try:
            await self._stopping.wait()
        finally:
            server.close()
            tasks = list(self._tasks) + ([] if watching is None else [watching])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None and len(self._tasks) >= MAX_CONNECTIONS and self._idle:
            oldest, idle_writer = next(iter(self._idle.items()))
            del self._idle[oldest]
            self._tasks.discard(oldest)  # gone from the count now, not when it unwinds
            idle_writer.close()
            oldest.cancel()  # the longest-idle connection gives way to this one
        if task is None or len(self._tasks) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._tasks.add(task)
        try:
            while await self._one(reader, writer, task):
                await asyncio.sleep(0)  # the other connections' turn
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the port is closing; ending here spares asyncio's callback a traceback
        except Exception:  # never a crash: log it, close this connection
            logger.exception("the probe port failed a request")
        finally:
            self._tasks.discard(task)
            self._idle.pop(task, None)
            writer.close()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task[Any]
    ) -> bool:
        """Answer one request; return whether to keep the connection for the next."""
        self._idle[task] = writer  # waiting for a head: the first to go at the cap
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, TimeoutError):
            return False  # closed, or too slow: a slow-loris client goes here
        except asyncio.LimitOverrunError:
            self._idle.pop(task, None)
            await self._refuse(reader, writer, encode(TOO_LARGE, TOO_LARGE.body, False, False))
            return False
        finally:
            self._idle.pop(task, None)
        parsed = Head(head)
        if not parsed.parse_request():
            # The library has written its answer (400, 431, 505), or nothing; to what
            # it takes for HTTP/0.9 it answers with no status line: ours instead.
            error = parsed.out.getvalue()
            if not error or parsed.request_version == "HTTP/0.9":
                error = encode(BAD_REQUEST, BAD_REQUEST.body, False, False)
            await self._refuse(reader, writer, error)
            return False
        version, method = parsed.request_version, parsed.command
        if version not in ("HTTP/1.0", "HTTP/1.1"):  # HTTP/0.9 has no status line
            await self._refuse(reader, writer, encode(BAD_REQUEST, BAD_REQUEST.body, False, False))
            return False
        headers = parsed.headers
        lengths = headers.get_all("Content-Length") or []
        hosts = headers.get_all("Host") or []
        if (
            len(lengths) > 1
            or not all(valid_length(value) for value in lengths)
            or len(hosts) > 1
            or (not hosts and version == "HTTP/1.1")
            or not all(valid_host(host) for host in hosts)
            or malformed_fields(head)
        ):
            # Two lengths, or one that is no number: the body's end cannot be known.
            # No Host in HTTP/1.1, two in any version, or one that names no host
            # (RFC 9112 section 3.2), and a field that is not "token: value" (section
            # 5.1, RFC 9110 section 5.5): a 400.
            await self._refuse(reader, writer, encode(BAD_REQUEST, BAD_REQUEST.body, False, False))
            return False
        has_body = (lengths and lengths[0].strip() != "0") or "Transfer-Encoding" in headers
        path = target(parsed.path)
        snapshot = self._source.publisher.snapshot
        if path in snapshot.answers:

            def authorization() -> bytes | None:
                value = headers.get("Authorization")
                return None if value is None else value.encode("latin-1", "replace")

            def accept() -> tuple[bytes | None, str | None]:
                value = headers.get("Accept")
                query = parsed.path.partition("?")[2].partition("#")[0]
                return (None if value is None else value.encode("latin-1", "replace")), query

            decision = snapshot.decide(path, method, authorization, time.monotonic(), accept)
            if decision.drain_for is not None:
                self._source.sharing.drain()
                await asyncio.sleep(decision.drain_for)
            response = decision.response
        else:
            response = NOT_FOUND
        keep = not (parsed.close_connection or has_body or self._stopping.is_set())
        body = b"" if method == "HEAD" else response.body
        writer.write(parsed.out.getvalue() + encode(response, body, keep, version == "HTTP/1.0"))
        async with asyncio.timeout(READ_TIMEOUT):
            await writer.drain()
        return keep

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        """Send an error answer and close gracefully: what the client is still sending
        is read and dropped for a moment, so its connection is not reset before it
        reads the answer."""
        writer.write(answer)
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(LINGER):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                dropped = 0
                while dropped < _LINGER_BYTES:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    dropped += len(chunk)
