"""Serving a result file: full body or one byte range (206), so downloads can resume."""

from __future__ import annotations

from report_gateway_sandbox.results import ResultBody
from report_gateway_sandbox.wire import Request, Response, parse_range


def file_response(req: Request, body: ResultBody, *, content_type: str) -> Response:
    size = body.size
    headers = [
        ("Content-Type", content_type),
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", f'attachment; filename="{body.filename}"'),
    ]
    wanted = parse_range(req.header("Range"), size)
    if wanted == "unsatisfiable":
        return Response(416, b"", [*headers, ("Content-Range", f"bytes */{size}")])
    if wanted is None or isinstance(wanted, str):
        return Response(200, headers=headers, stream=body, stream_range=(0, size))
    start, end = wanted
    headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
    return Response(206, headers=headers, stream=body, stream_range=(start, end))
