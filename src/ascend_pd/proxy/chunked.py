"""Incremental decoding of an HTTP/1.1 chunked body (RFC 9112 section 7.1), as a pure class.

Fed whatever the socket delivered, it returns the payload bytes decoded so far; a vLLM
stream arrives as one chunk per SSE event, so the common case is one whole chunk per feed.
"""

from __future__ import annotations

MAX_LINE = 8 * 1024


class ChunkedDecoder:
    """``feed(data) -> payload``; ``done`` after the last chunk and trailers.

    Raises ValueError on a malformed body. Bytes after the end are kept in ``leftover``.
    """

    def __init__(self) -> None:
        self.done = False
        self.leftover = b""
        self._line = bytearray()  # a size or trailer line being collected
        self._remaining = 0  # payload bytes left in the current chunk
        self._crlf = 0  # bytes of the CRLF after a chunk's payload still expected
        self._trailers = False

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            if self.done:
                self.leftover += bytes(view[pos:])
                break
            if self._remaining:
                take = min(self._remaining, end - pos)
                out += view[pos:pos + take]
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._crlf = 2
                continue
            if self._crlf:
                expected = b"\r\n"[2 - self._crlf]
                if data[pos] != expected:
                    raise ValueError("chunk payload not followed by CRLF")
                pos += 1
                self._crlf -= 1
                continue
            newline = data.find(b"\n", pos)
            if newline < 0:
                self._line += view[pos:]
                if len(self._line) > MAX_LINE:
                    raise ValueError("chunk size line too long")
                break
            self._line += view[pos:newline + 1]
            pos = newline + 1
            line = bytes(self._line).rstrip(b"\r\n")
            self._line.clear()
            self._line_done(line)
        return bytes(out)

    def _line_done(self, line: bytes) -> None:
        if self._trailers:
            if not line:
                self.done = True
            return
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise ValueError(f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            self._trailers = True
        else:
            self._remaining = size
