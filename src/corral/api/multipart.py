"""One file field of a multipart/form-data body, streamed as it arrives.

Starlette's ``request.form()`` spools a whole upload to a temporary file before
the route sees a byte, so neither a size limit nor the database write could
start until the last byte arrived. Here python-multipart's push parser is fed
one body piece at a time and the wanted field's bytes are handed on as they
come out, so at most one received piece (plus a part's headers, themselves
capped) is held at once. Any face that takes uploads reads them through here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from corral.errors import InvalidInput, TooLarge

MULTIPART_SLACK = 64 << 10  # boundaries and part headers around the file's bytes
MAX_PART_HEADERS = 16 << 10  # a part's headers are buffered whole: keep that bounded


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def check_declared_length(request: Request, limit: int, slack: int = 0) -> None:
    """Refuse at once a body whose declared length already exceeds the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + slack:
        raise TooLarge(f"the upload exceeds the limit of {limit} bytes", limit=limit)


async def raw_body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect:
        raise InvalidInput("the client disconnected during the upload") from None


class MultipartFile:
    """The first part named ``field``: ``open()`` reads up to its bytes, ``chunks()`` streams them.

    Pull-driven: the body is read only when the consumer asks for more, so a
    slow store slows the client down (TCP back-pressure) instead of filling memory.
    """

    def __init__(self, request: Request, field: str = "file") -> None:
        _, params = parse_options_header(request.headers.get("content-type"))
        boundary = params.get(b"boundary")
        if not boundary:
            raise InvalidInput("multipart body without a boundary", field=field)
        self.field = field
        self.filename: str | None = None  # None: the part carried no filename at all
        self.content_type: str | None = None
        self._body = raw_body(request)
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._name = bytearray()
        self._value = bytearray()
        self._inside = False  # the parser is in the wanted part's data
        self._found = False
        self._done = False
        self._pending: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def _part_begin(self) -> None:
        self._headers.clear()
        self._header_bytes = 0

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_PART_HEADERS:
            raise InvalidInput("multipart part headers are too large", field=self.field)

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._name.extend(data[start:end])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._value.extend(data[start:end])

    def _header_end(self) -> None:
        self._headers[bytes(self._name).lower()] = bytes(self._value)
        self._name.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition"))
        if self._found or disposition.get(b"name") != self.field.encode():
            return
        self._found = self._inside = True
        filename = disposition.get(b"filename")
        self.filename = None if filename is None else filename.decode(errors="replace")
        kind = self._headers.get(b"content-type")
        self.content_type = kind.decode("latin-1") if kind else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._inside:
            self._pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        if self._inside:
            self._inside = False
            self._done = True

    async def _feed(self) -> bool:
        """Parse the next piece of the body; False at its end."""
        try:
            piece = await anext(self._body)
        except StopAsyncIteration:
            return False
        try:
            self._parser.write(piece)
        except FormParserError as exc:
            raise InvalidInput(f"malformed multipart body: {exc}", field=self.field) from None
        return True

    async def open(self) -> None:
        """Read up to the start of the wanted part; its name and type are then known."""
        while not self._found:
            if not await self._feed():
                raise InvalidInput(
                    f"the multipart body has no {self.field!r} field", field=self.field
                )

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            pending, self._pending = self._pending, []
            for piece in pending:
                yield piece
            if self._done:
                return
            if not await self._feed():
                raise InvalidInput("the multipart body ended inside the file", field=self.field)
