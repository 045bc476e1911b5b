"""Incremental decoding of one HTTP/1.1 response (head and body framing), as a pure class.

Fed whatever the socket delivered, ``ResponseDecoder.feed`` returns the body bytes decoded so
far; ``head`` is set once the status line and headers are complete. It knows the three body
framings a vLLM API server uses (Content-Length, chunked, until close; RFC 9112 section 6.3)
and nothing of sockets, so every framing and every malformed answer is tested byte by byte
without a server (tests/proxy/test_response.py). ``upstream._Connection`` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ascend_pd.proxy.chunked import ChunkedDecoder

#: A response head larger than this is refused: no vLLM answer comes close, and an unbounded
#: head is memory a misbehaving (or hostile) backend could make the proxy hold.
MAX_HEAD = 64 * 1024


class ResponseError(ValueError):
    """The bytes are not a well-formed HTTP/1.1 response (the message says what is wrong)."""


@dataclass(frozen=True)
class Head:
    """Status line and headers (names lower-cased; a repeated header keeps its last value)."""

    status: int
    headers: dict[str, str]


class ResponseDecoder:
    """``feed(data) -> body bytes``; ``done`` after the last body byte.

    ``keep_alive`` says whether the connection may carry another request afterwards: false
    for ``Connection: close``, HTTP/1.0 without keep-alive, a body framed by the close, and
    bytes beyond the end of the response. Bytes fed *after* ``done`` raise ResponseError (the
    backend sent something nobody asked for; the connection must not be reused).
    """

    def __init__(self) -> None:
        self.head: Head | None = None
        self.done = False
        self.keep_alive = True
        self.until_close = False  # the body ends when the backend closes the connection
        self._raw = bytearray()  # bytes before the head is complete
        self._remaining = -1  # Content-Length left; -1 = not length-framed
        self._chunked: ChunkedDecoder | None = None

    def feed(self, data: bytes) -> bytes:
        if self.head is None:
            self._raw += data
            if not self._parse_head():
                return b""
            data, self._raw = bytes(self._raw), bytearray()
        return self._body(data)

    def eof(self) -> bool:
        """The backend closed the connection: True when that completed the response."""
        if self.until_close and self.head is not None:
            self.done = True
        return self.done

    # -- head ------------------------------------------------------------------------------
    def _parse_head(self) -> bool:
        while True:
            end = self._raw.find(b"\r\n\r\n")
            if end < 0:
                if len(self._raw) > MAX_HEAD:
                    raise ResponseError(f"response head larger than {MAX_HEAD // 1024} KiB")
                return False
            if end > MAX_HEAD:
                raise ResponseError(f"response head larger than {MAX_HEAD // 1024} KiB")
            lines = self._raw[:end].decode("latin-1").split("\r\n")
            del self._raw[:end + 4]
            try:
                version, code = lines[0].split(" ", 2)[:2]
                status = int(code)
            except ValueError:
                raise ResponseError(f"malformed status line {lines[0][:80]!r}") from None
            if not version.startswith("HTTP/1.") or not 100 <= status < 600:
                raise ResponseError(f"malformed status line {lines[0][:80]!r}")
            if status >= 200:
                break
            # An interim answer (100 Continue): the real one follows.
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        self.keep_alive = ("close" not in connection if version == "HTTP/1.1"
                           else "keep-alive" in connection)
        if status in (204, 304):
            self.done = True
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = ChunkedDecoder()
        elif "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit():
                raise ResponseError(f"malformed Content-Length {text[:20]!r}")
            self._remaining = int(text)
            self.done = self._remaining == 0
        else:
            self.until_close = True
            self.keep_alive = False
        self.head = Head(status, headers)
        return True

    # -- body ------------------------------------------------------------------------------
    def _body(self, data: bytes) -> bytes:
        if self.done:
            if data:
                raise ResponseError("bytes after the end of the response")
            return b""
        if self._chunked is not None:
            try:
                out = self._chunked.feed(data)
            except ValueError as exc:
                raise ResponseError(f"bad chunked body: {exc}") from None
            self.done = self._chunked.done
            if self.done and self._chunked.leftover:
                self.keep_alive = False
            return out
        if self._remaining >= 0:
            take = data[:self._remaining]
            self._remaining -= len(take)
            self.done = self._remaining == 0
            if len(data) > len(take):
                self.keep_alive = False
            return take
        return data
