"""The upstream response decoder, fed bytes without a socket: every framing, every split."""

from __future__ import annotations

import pytest

from ascend_pd.proxy.response import MAX_HEAD, ResponseDecoder, ResponseError

LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"d\r\ndata: first\n\n\r\n0\r\n\r\n")


def _feed_split(data: bytes, cut: int) -> tuple[ResponseDecoder, bytes]:
    decoder = ResponseDecoder()
    return decoder, decoder.feed(data[:cut]) + decoder.feed(data[cut:])


@pytest.mark.parametrize(("raw", "body"), [(LENGTH, b'{"ok":true}'),
                                           (CHUNKED, b"data: first\n\n")])
def test_same_head_and_body_wherever_the_bytes_are_cut(raw, body):
    for cut in range(len(raw) + 1):
        decoder, out = _feed_split(raw, cut)
        assert out == body, cut
        assert decoder.done and decoder.keep_alive
        assert decoder.head is not None
        assert decoder.head.status == 200


def test_head_names_are_lower_case_and_interim_answers_are_skipped():
    decoder = ResponseDecoder()
    out = decoder.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n"
                       b"X-Request-Id: r1\r\nContent-Length: 2\r\n\r\nno")
    assert decoder.head is not None
    assert (decoder.head.status, decoder.head.headers["x-request-id"]) == (404, "r1")
    assert out == b"no"


def test_body_until_close_ends_at_eof_and_is_not_reusable():
    decoder = ResponseDecoder()
    assert decoder.feed(b"HTTP/1.0 200 OK\r\n\r\nall ") + decoder.feed(b"of it") == b"all of it"
    assert not decoder.done
    assert decoder.eof()
    assert not decoder.keep_alive


def test_eof_before_the_end_is_incomplete():
    decoder = ResponseDecoder()
    decoder.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    assert not decoder.eof()
    assert not ResponseDecoder().eof()


@pytest.mark.parametrize(("raw", "keep_alive"), [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),  # extra bytes: spoiled
])
def test_keep_alive(raw, keep_alive):
    decoder = ResponseDecoder()
    decoder.feed(raw)
    assert decoder.done
    assert decoder.keep_alive is keep_alive


@pytest.mark.parametrize(("raw", "message"), [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 abc OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunked body"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (MAX_HEAD + 1), "larger than 64 KiB"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (MAX_HEAD + 1) + b"\r\n\r\n", "larger than 64 KiB"),
])
def test_malformed_answers_are_errors(raw, message):
    with pytest.raises(ResponseError, match=message):
        ResponseDecoder().feed(raw)


def test_bytes_after_the_end_are_an_error():
    decoder = ResponseDecoder()
    decoder.feed(LENGTH)
    with pytest.raises(ResponseError, match="after the end"):
        decoder.feed(b"HTTP/1.1 200 OK\r\n")
