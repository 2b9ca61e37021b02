"""A raw-socket HTTP server on 127.0.0.1 that answers with whatever bytes a test hands it:
lying lengths, endless bodies, echoed secrets. It counts the bytes it managed to send, which
is how a test proves the client stopped reading (bounded memory) without timing anything."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

Answer = Callable[[bytes], Iterator[bytes]]


class RawServer:
    """Serves each connection with ``answer(request_head)``: an iterator of byte pieces sent
    in order until it ends or the client hangs up. ``sent`` counts the bytes delivered."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent = 0
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        return
                    head += data
                self.requests.append(head)
                for piece in self.answer(head):
                    if self._stop.is_set():
                        return
                    conn.sendall(piece)
                    self.sent += len(piece)
            except OSError:
                return  # the client hung up: exactly what a bounded reader does

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)


def head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def endless(piece: bytes = b" " * 65536) -> Iterator[bytes]:
    while True:
        yield piece
