"""Reading a response's header block without the ``email`` package, where that changes
nothing.

``http.client`` reads the header lines itself, then hands them to ``email.parser`` (a
``FeedParser`` built for MIME messages) to make the ``HTTPMessage`` that urllib3 and this
runtime read. For a small JSON answer that parser is the largest single cost of reading
it, and a ``start`` + ``get`` reads two answers (the fan-out three to four per run).

``HeaderFastResponse`` is ``http.client.HTTPResponse`` with that one step replaced. A block
whose every line is a plain ``token: value`` line of ASCII, ending with an empty line,
becomes the very ``HTTPMessage`` the parser would have built (the same ``(name, value)``
pairs in order, an empty payload, no defects), checked and split by two regular
expressions over the whole block. Anything else (a ``Content-Type`` of multipart/* or
message/*, whose empty body the parser goes on to judge, a folded line, a line without a name, a
stray CR, a byte above 0x7F, a block ended by the connection closing) goes to the ``email``
parser as before, so an odd or hostile answer is read exactly as ``http.client`` reads it,
defects included (urllib3 logs those). The line-length and line-count limits are
``http.client``'s own. ``tests/runtime/test_headers.py`` holds both paths to
``http.client``'s result over generated blocks and answers.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any

__all__ = ["HeaderFastResponse", "parse_header_lines", "read_header_lines"]

#: Header lines as the ``email`` parser splits them with the compat32 policy: a name of
#: printable characters other than ``:``, then the value after leading blanks, no CR
#: before the line's end. ``_PLAIN_BLOCK`` checks a whole block, ``_PLAIN_LINE`` splits it.
_PLAIN_BLOCK = re.compile(r"(?:[!-9;-~]+:[ \t]*[^\r\n]*\r?\n)*")
_PLAIN_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r?\n")
_BLANK = (b"\r\n", b"\n")
#: Content main types whose body the ``email`` parser goes on to parse (and judge).
_PARSED_ON = ("multipart", "message")
#: ``http.client``'s own limits on a header line's bytes and on the lines of a block.
_MAXLINE: int = getattr(http.client, "_MAXLINE", 65536)
_MAXHEADERS: int = getattr(http.client, "_MAXHEADERS", 100)


def read_header_lines(fp: Any) -> list[bytes]:
    """The header lines up to and including the empty line (or the end of the stream),
    with ``http.client``'s limits: a line over ``_MAXLINE`` bytes is ``LineTooLong``, more
    than ``_MAXHEADERS`` lines an ``HTTPException``."""
    limit, most = _MAXLINE, _MAXHEADERS
    lines: list[bytes] = []
    readline = fp.readline
    while True:
        line = readline(limit + 1)
        if len(line) > limit:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > most:
            raise http.client.HTTPException(f"got more than {most} headers")
        if line in _BLANK or not line:
            return lines


def parse_header_lines(lines: list[bytes]) -> http.client.HTTPMessage:
    """The ``HTTPMessage`` for ``lines`` (as ``read_header_lines`` returns them): built
    directly when every line is plain, else by the ``email`` parser as ``http.client``
    does."""
    if lines and lines[-1] in _BLANK:
        block = b"".join(lines[:-1])
        if block.isascii():
            text = block.decode("ascii")
            if _PLAIN_BLOCK.fullmatch(text):
                message = http.client.HTTPMessage()
                for name, value in _PLAIN_LINE.findall(text):
                    message.set_raw(name, value)
                # The parser reads on past a multipart/* or message/* block's headers
                # (missing boundaries become defects, a message/* payload a sub-message):
                # those blocks are its own to build.
                if message.get_content_maintype() not in _PARSED_ON:
                    message.set_payload("")
                    return message
    text = b"".join(lines).decode("iso-8859-1")
    parsed: http.client.HTTPMessage = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        text
    )
    return parsed


class HeaderFastResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose header block is read by ``parse_header_lines``;
    the status line, ``100 Continue``, framing (chunked, Content-Length) and keep-alive
    rules are ``http.client``'s, applied in the same order."""

    def begin(self) -> None:
        if getattr(self, "headers", None) is not None:  # already begun
            return
        # http.client's own helpers and fields (typeshed leaves the private ones out).
        base: Any = self
        while True:
            version, status, reason = base._read_status()
            if status != http.client.CONTINUE:
                break
            skipped = read_header_lines(self.fp)  # an interim answer's headers mean nothing
            if self.debuglevel > 0:  # http.client's debug output, as it prints it
                print("headers:", skipped)
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = parse_header_lines(read_header_lines(self.fp))
        if self.debuglevel > 0:
            for name, value in self.headers.items():
                print("header:", name + ":", value)
        encoding = self.headers.get("transfer-encoding")
        self.chunked = encoding is not None and encoding.lower() == "chunked"
        if self.chunked:
            self.chunk_left = None
        self.will_close = base._check_close()
        self.length = None
        declared = self.headers.get("content-length")
        if declared and not self.chunked:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            self.length = length if length >= 0 else None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or base._method == "HEAD"
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
