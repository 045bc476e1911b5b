"""The proxy's HTTP/1.1 client for its upstream legs: keep-alive connections on asyncio protocols.

Why not aiohttp's client: at concurrency 1 it was most of what the proxy added to a request
(+0.6 of +0.8 ms, docs/proxy.md); the same relay on this client adds ~0.1 ms. It covers what
a vLLM API server needs and nothing more: GET/POST over plain HTTP, bodies framed by
Content-Length, chunked or connection close, keep-alive reuse, connect/read/total timeouts
and flow control for long streams (the response framing is the pure ``response.ResponseDecoder``).
No TLS, redirects, cookies or decompression: the bytes a
backend sends are the bytes the proxy relays.

Errors: ``ConnectFailed`` (no connection: refused, unreachable, connect timeout),
``UpstreamTimeout`` (also a ``TimeoutError``), ``UpstreamClosed`` (reset, early close or a
malformed response); all are ``UpstreamError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol, cast

from ascend_pd.proxy.response import Head, ResponseDecoder, ResponseError

#: Body bytes buffered before the socket stops being read (a slow client slows its decode).
HIGH_WATER = 256 * 1024


class HostPort(Protocol):
    """Where a backend listens (``BackendAddress`` is one)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


class UpstreamError(Exception):
    """Talking to a backend failed."""


class ConnectFailed(UpstreamError):
    """No connection could be made (refused, unreachable, or the connect timed out)."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The backend did not answer, or went silent, for longer than allowed."""


class UpstreamClosed(UpstreamError):
    """The backend closed or reset the connection early, or sent a malformed response."""


class _Connection(asyncio.Protocol):
    """One TCP connection; carries one request at a time. Parsing is ``ResponseDecoder``'s."""

    def __init__(self, pool: list[_Connection], registry: set[_Connection]) -> None:
        self.pool = pool  # the idle list it returns to (and leaves when the peer closes)
        self.registry = registry  # every open connection of the client (for close())
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: UpstreamError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.last_used = 0.0
        self.reset()

    def reset(self) -> None:
        self.decoder = ResponseDecoder()
        self.body = bytearray()
        self.keep_alive = True  # false once the proxy gave up on this exchange
        self.paused = False

    @property
    def head(self) -> Head | None:
        return self.decoder.head

    @property
    def done(self) -> bool:
        return self.decoder.done

    @property
    def reusable(self) -> bool:
        return (self.decoder.done and self.decoder.keep_alive and self.keep_alive
                and self.error is None and not self.closed)

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports implement the interface
        # without subclassing asyncio.Transport (an assert here broke every connection).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            body = self.decoder.feed(data)
        except ResponseError as exc:
            self._fail(str(exc))
            self._wake()
            return
        if body:
            self.body += body
            if len(self.body) > HIGH_WATER and not self.done and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost finishes the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.stop_timer()
        self.registry.discard(self)
        if self in self.pool:
            self.pool.remove(self)
        if not self.decoder.eof() and self.error is None:
            when = "before answering" if self.head is None else "in the middle of the body"
            self.error = UpstreamClosed(f"the backend closed the connection {when}"
                                        + (f": {exc}" if exc else ""))
        self._wake()

    def pause_writing(self) -> None:
        pass  # requests are small and written once

    def resume_writing(self) -> None:
        pass

    def _fail(self, message: str) -> None:
        self.error = UpstreamClosed(message)
        self.keep_alive = False
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- waiting -------------------------------------------------------------------------
    async def wait(self, deadline: float) -> None:
        """Wait for the next protocol event; UpstreamTimeout once ``deadline`` passes."""
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            raise UpstreamTimeout("the backend went silent for too long")
        self.waiter = waiter = loop.create_future()
        self.deadline = deadline
        # One timer per connection, moved only when a deadline comes *earlier*: a stream's
        # deadlines only move later, so its thousands of waits do not each schedule a timer.
        if self.timer is None or self.timer.when() > deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(deadline, self._on_timer)
        try:
            await waiter
        finally:
            self.waiter = None

    def _on_timer(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # nobody waits now; the next wait arms a new timer
        loop = waiter.get_loop()
        if loop.time() >= self.deadline:
            waiter.set_exception(UpstreamTimeout("the backend went silent for too long"))
        else:
            self.timer = loop.call_at(self.deadline, self._on_timer)

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class UpstreamResponse:
    """A response whose head has arrived; read the body with ``read`` or ``readany``.

    ``close()`` (or leaving ``async with``) hands a finished connection back for reuse and
    closes an unfinished one, which makes vLLM abort the request.
    """

    def __init__(self, conn: _Connection, client: UpstreamClient, read_timeout: float,
                 deadline: float) -> None:
        assert conn.head is not None
        self.status, self.headers = conn.head.status, conn.head.headers
        self._conn: _Connection | None = conn
        self._client = client
        self._read_timeout = read_timeout
        self._deadline = deadline

    def _take(self, conn: _Connection) -> bytes:
        data = bytes(conn.body)
        conn.body.clear()
        if conn.paused and conn.transport is not None:
            conn.paused = False
            conn.transport.resume_reading()
        return data

    async def readany(self) -> bytes:
        """The body bytes received so far (waiting for some); ``b""`` at the end."""
        conn = self._conn
        if conn is None:
            return b""
        while not conn.body:
            if conn.done:
                self.close()
                return b""
            if conn.error is not None:
                raise conn.error
            await conn.wait(self._next_deadline())
        return self._take(conn)

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        if conn is None:
            return b""
        while not conn.done:
            if conn.error is not None:
                raise conn.error
            if conn.paused and conn.transport is not None:  # the caller wants it all
                conn.paused = False
                conn.transport.resume_reading()
            await conn.wait(self._next_deadline())
        data = bytes(conn.body)
        self.close()
        return data

    def _next_deadline(self) -> float:
        return min(asyncio.get_running_loop().time() + self._read_timeout, self._deadline)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client.release(conn)

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class UpstreamClient:
    """Keep-alive connections per backend (host, port), newest reused first."""

    #: Below uvicorn's (so vLLM's) 5 s keep-alive: a connection the backend is about to
    #: close is never picked for a request (that race would fail the leg for nothing).
    def __init__(self, *, max_idle_per_backend: int = 128, idle_timeout_s: float = 4.0,
                 user_agent: str = "ascend-pd-proxy") -> None:
        self.max_idle = max_idle_per_backend
        self.idle_timeout_s = idle_timeout_s
        self.user_agent = user_agent
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._all: set[_Connection] = set()

    async def get(self, address: HostPort, path: str, timeout: float,
                  headers: Mapping[str, str] | None = None) -> UpstreamResponse:
        """A GET whose connect, head and body all fit in ``timeout`` seconds."""
        return await self.request("GET", address, path, headers=headers,
                                  connect_timeout=timeout, read_timeout=timeout,
                                  total_timeout=timeout)

    async def request(self, method: str, address: HostPort, path: str, *,
                      body: bytes = b"", headers: Mapping[str, str] | None = None,
                      connect_timeout: float = 5.0, read_timeout: float = 600.0,
                      total_timeout: float | None = None) -> UpstreamResponse:
        """Send one request and wait for the response head (not the body).

        ``read_timeout`` bounds each silence (the head, then every wait for body bytes);
        ``total_timeout`` the whole exchange including the body.
        """
        host, port = address.host, address.port
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (total_timeout if total_timeout is not None else 1e9)
        conn = await self._checkout(host, port, min(connect_timeout, deadline - loop.time()))
        try:
            assert conn.transport is not None
            conn.transport.write(_request_bytes(method, host, port, path, body, headers,
                                                self.user_agent))
            while conn.head is None:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(min(loop.time() + read_timeout, deadline))
        except BaseException:
            conn.keep_alive = False
            self.release(conn)
            raise
        return UpstreamResponse(conn, self, read_timeout, deadline)

    async def _checkout(self, host: str, port: int, connect_timeout: float) -> _Connection:
        idle = self._idle.setdefault((host, port), [])
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            assert conn.transport is not None
            if not conn.closed and not conn.transport.is_closing() \
                    and now - conn.last_used < self.idle_timeout_s:
                conn.reset()
                return conn
            conn.transport.close()
        loop = asyncio.get_running_loop()
        try:
            _t, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(idle, self._all), host, port),
                max(connect_timeout, 0.001))
        except asyncio.TimeoutError:
            raise ConnectFailed(f"connect to {host}:{port} timed out after "
                                f"{connect_timeout:g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {host}:{port}: "
                                f"{exc.strerror or exc}") from None
        self._all.add(conn)
        return conn

    def release(self, conn: _Connection) -> None:
        """Back to the idle list when the exchange finished cleanly; closed otherwise."""
        conn.stop_timer()
        idle = conn.pool
        if conn.reusable and len(idle) < self.max_idle:
            conn.last_used = time.monotonic()
            idle.append(conn)
            return
        self._all.discard(conn)
        if conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        """Close every connection (idle or not)."""
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost


def _request_bytes(method: str, host: str, port: int, path: str, body: bytes,
                   headers: Mapping[str, str] | None, user_agent: str) -> bytes:
    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {user_agent}"]
    for name, value in (headers or {}).items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
