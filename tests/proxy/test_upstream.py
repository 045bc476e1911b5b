"""The proxy's upstream HTTP/1.1 client against a scripted TCP server, and its chunked decoder.

The relay tests drive the client through real simulated vLLMs; these cover the framing and
failure cases a backend (or the network) can produce that the simulator does not.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from ascend_pd.proxy.chunked import ChunkedDecoder
from ascend_pd.proxy.config import BackendAddress
from ascend_pd.proxy.upstream import (
    ConnectFailed,
    UpstreamClient,
    UpstreamClosed,
    UpstreamTimeout,
)

CHUNKED = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n"


# -- the chunked decoder (pure) ----------------------------------------------------------
def test_chunked_decodes_the_same_whatever_the_split():
    for cut in range(1, len(CHUNKED)):
        decoder = ChunkedDecoder()
        out = decoder.feed(CHUNKED[:cut]) + decoder.feed(CHUNKED[cut:])
        assert out == b"Wikipedia in \r\n\r\nchunks.", cut
        assert decoder.done


def test_chunked_one_byte_at_a_time_and_leftover():
    decoder = ChunkedDecoder()
    data = CHUNKED + b"HTTP/1.1 200"
    out = b"".join(decoder.feed(data[i:i + 1]) for i in range(len(data)))
    assert out == b"Wikipedia in \r\n\r\nchunks."
    assert decoder.leftover == b"HTTP/1.1 200"


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-1\r\n", b"0x4\r\nWiki\r\n", b"4\r\nWikiXX",
                                 b"\r\n"])
def test_chunked_rejects_malformed_bodies(bad):
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(bad)


# -- the client against a scripted server -------------------------------------------------
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class Scripted:
    """A TCP server answering each request with ``script(reader, writer, request_no)``."""

    script: Script
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    eofs: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                await self.script(reader, writer, len(self.requests))
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eofs += 1
        finally:
            writer.close()


def run(script: Script, scenario: Callable[[UpstreamClient, BackendAddress, Scripted],
                                           Awaitable[None]]) -> Scripted:
    async def main() -> Scripted:
        scripted = Scripted(script)
        server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
        address = BackendAddress("127.0.0.1", server.sockets[0].getsockname()[1])
        client = UpstreamClient()
        try:
            await asyncio.wait_for(scenario(client, address, scripted), 10)
        finally:
            await client.close()
            server.close()
            await server.wait_closed()
        return scripted

    return asyncio.run(main())


def answer(body: bytes, extra: bytes = b"", then: bytes = b"") -> Script:
    """Every request gets ``body`` (headers plus ``extra``), followed by ``then``."""
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
                     + b"Content-Length: %d\r\n\r\n" % len(body) + body + then)
        await writer.drain()
    return script


def test_keep_alive_reuses_one_connection_and_sends_a_well_formed_request():
    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        for _ in range(3):
            resp = await client.request("POST", address, "/v1/completions", body=b'{"a":1}',
                                        headers={"X-Request-Id": "r1"})
            assert (resp.status, resp.headers["content-type"]) == (200, "application/json")
            assert await resp.read() == b'{"ok":true}'

    scripted = run(answer(b'{"ok":true}'), scenario)
    assert scripted.connections == 1
    first = scripted.requests[0]
    assert first.startswith(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-Request-Id: r1\r\n" in first and b"\r\nContent-Length: 7\r\n" in first
    assert first.endswith(b'\r\n\r\n{"a":1}')


def test_connection_close_is_honoured():
    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        for _ in range(2):
            async with await client.get(address, "/health", 5) as resp:
                assert await resp.read() == b"ok"

    scripted = run(answer(b"ok", b"Connection: close\r\n"), scenario)
    assert scripted.connections == 2


def test_body_until_close_and_chunked_stream_arrive_piece_by_piece():
    gate = asyncio.Event()

    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:  # no length: the body ends when the server closes
            writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await gate.wait()  # the client must see the first event before the second exists
        writer.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
        await writer.drain()

    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        resp = await client.get(address, "/a", 5)
        assert await resp.read() == b"all of it"
        resp = await client.request("POST", address, "/v1/completions", body=b"{}")
        assert await resp.readany() == b"data: first\n\n"
        gate.set()
        assert await resp.readany() == b"data: second\n\n"
        assert await resp.readany() == b""

    run(script, scenario)


def test_backend_closing_early_is_an_upstream_error():
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        writer.close()

    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        with pytest.raises(UpstreamClosed, match="before answering"):
            await client.request("POST", address, "/x", body=b"{}")
        resp = await client.request("POST", address, "/x", body=b"{}")
        with pytest.raises(UpstreamClosed, match="middle of the body"):
            await resp.read()

    run(script, scenario)


def test_refused_connect_and_silence_have_their_own_errors():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = BackendAddress("127.0.0.1", s.getsockname()[1])  # bound, not listening

    async def script(_r: asyncio.StreamReader, _w: asyncio.StreamWriter, _n: int) -> None:
        await asyncio.sleep(5)

    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        with pytest.raises(ConnectFailed, match="cannot connect"):
            await client.request("POST", closed, "/x")
        with pytest.raises(UpstreamTimeout):
            await client.request("POST", address, "/x", read_timeout=0.2)
        with pytest.raises(TimeoutError):  # what generic callers catch
            await client.get(address, "/health", 0.2)

    run(script, scenario)


def test_abandoning_a_response_closes_its_connection_so_the_backend_aborts():
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()

    async def scenario(client: UpstreamClient, address: BackendAddress,
                       scripted: Scripted) -> None:
        async with await client.request("POST", address, "/x", body=b"{}") as resp:
            assert await resp.readany() == b"abc"
        for _ in range(100):  # the server notices the close
            if scripted.eofs:
                break
            await asyncio.sleep(0.01)
        assert scripted.eofs == 1
        await (await client.get(address, "/x", 5)).readany()
        assert scripted.connections == 2  # the half-read connection was not reused

    run(script, scenario)


def test_an_idle_connection_the_backend_closed_is_not_reused():
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if n == 1:
            writer.close()  # like uvicorn's keep-alive timeout, after the answer

    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        assert await (await client.get(address, "/a", 5)).read() == b"ok"
        await asyncio.sleep(0.1)
        assert await (await client.get(address, "/b", 5)).read() == b"ok"

    scripted = run(script, scenario)
    assert scripted.connections == 2


def test_large_body_read_through_flow_control():
    big = bytes(range(256)) * 8192  # 2 MiB, well past the high-water mark

    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        resp = await client.get(address, "/big", 5)
        got = bytearray()
        while piece := await resp.readany():
            got += piece
            await asyncio.sleep(0)  # a slow reader
        assert bytes(got) == big
        assert await (await client.get(address, "/big", 5)).read() == big

    scripted = run(answer(big), scenario)
    assert scripted.connections == 1


def test_header_values_cannot_inject_lines():
    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        with pytest.raises(ValueError, match="line break"):
            await client.request("POST", address, "/x", headers={"X-Request-Id": "a\r\nB: c"})

    run(answer(b""), scenario)


def test_bytes_beyond_the_response_spoil_the_connection():
    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        for _ in range(2):
            assert await (await client.get(address, "/a", 5)).read() == b"ok"
            await asyncio.sleep(0.05)

    scripted = run(answer(b"ok", then=b"HTTP/1.1 200 OK\r\n"), scenario)
    assert scripted.connections == 2


def test_a_stream_may_outlast_the_read_timeout_but_not_fall_silent_for_longer():
    # One timer per connection follows the latest deadline: events 0.1 s apart over 0.6 s
    # pass a 0.3 s read timeout; the silence after them does not.
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):
            await asyncio.sleep(0.1)
            writer.write(b"3\r\nev\n\r\n")
            await writer.drain()
        await asyncio.sleep(5)

    async def scenario(client: UpstreamClient, address: BackendAddress, _s: Scripted) -> None:
        resp = await client.request("POST", address, "/x", body=b"{}", read_timeout=0.3)
        got = b""
        while len(got) < 18:
            got += await resp.readany()
        assert got == b"ev\n" * 6
        with pytest.raises(UpstreamTimeout):
            await resp.readany()
        resp.close()

    run(script, scenario)


def test_idle_connections_close_after_the_idle_limit_without_new_traffic():
    """A burst's keep-alive connections do not wait for the next request (or for the
    backend's own, possibly much longer, keep-alive) to be closed: fds on both sides."""
    async def main() -> Scripted:
        scripted = Scripted(answer(b"ok"))
        server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
        address = BackendAddress("127.0.0.1", server.sockets[0].getsockname()[1])
        client = UpstreamClient(idle_timeout_s=0.2)
        try:
            assert await (await client.get(address, "/a", 5)).read() == b"ok"
            await asyncio.sleep(0.1)
            assert scripted.eofs == 0  # still idle in the pool
            await asyncio.sleep(0.6)
            assert scripted.eofs == 1  # closed by the client, no request since
        finally:
            await client.close()
            server.close()
            await server.wait_closed()
        return scripted

    assert asyncio.run(main()).connections == 1
