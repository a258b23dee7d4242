"""How the app is served: gunicorn's threaded worker with a bound on every socket read, and
the dev server's request log without query strings.

gunicorn's gthread worker reads a request's headers and body with blocking reads that never
time out (its `timeout` setting is a heartbeat of the whole worker, which a stalled thread does
not stop). A client that sends headers and one byte of its body then holds a thread for as long
as it keeps the connection open; 16 of them held every thread of 2 workers x 8 threads. Here
each read waits at most `IMAGEREPO_READ_TIMEOUT_SECONDS` for its next byte: a stall while
reading headers closes the connection quietly (like a client that went away), a stall in a body
reaches the application as `ReadStalled`, which `request_body.CheckedInput` answers with 408.
Writes are not bounded here: a slow reader of a download is the reverse proxy's to absorb.

Closing: gunicorn closes a connection it will not keep alive "gracefully" on the worker's main
loop, lingering up to 2 s for the peer's FIN. A stalled client never sends one, so each stalled
connection froze the whole worker (no accept, no dispatch) for 2 s. Here a connection whose
read stalled is closed at once (nothing is left unread, so the close cannot turn into a reset
that loses the answer), and every other lingering close runs on a small pool of its own.
"""

from __future__ import annotations

import re
import select
import socket
from concurrent.futures import ThreadPoolExecutor

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.serving import WSGIRequestHandler


class ReadStalled(NoMoreData, TimeoutError):
    """No byte arrived within the read timeout. A NoMoreData, so gunicorn treats a stall in the
    headers as a client that went away (no error logged); a TimeoutError for everyone else."""

    def __str__(self) -> str:
        return "no byte arrived within the read timeout"


class _ReadTimeoutSocket(socket.socket):
    """A client socket whose blocking reads give up after `read_timeout` seconds without a byte.

    Only reads: the socket stays in blocking mode (no socket timeout), so a long response is
    not cut because one send() waited."""

    __slots__ = ("read_timeout", "stalled")
    read_timeout: float
    stalled: bool

    @classmethod
    def adopt(cls, sock: socket.socket, read_timeout: float) -> _ReadTimeoutSocket:
        blocking = sock.getblocking()
        adopted = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        adopted.read_timeout = read_timeout
        adopted.stalled = False
        adopted.setblocking(blocking)
        return adopted

    def _wait_readable(self) -> None:
        if self.gettimeout() is not None:
            return  # non-blocking, or a timeout gunicorn set itself (its body drain): it applies
        poller = select.poll()
        poller.register(self, select.POLLIN)
        if not poller.poll(self.read_timeout * 1000):
            self.stalled = True
            raise ReadStalled()

    def recv(self, bufsize, flags=0):
        self._wait_readable()
        return super().recv(bufsize, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        self._wait_readable()
        return super().recv_into(buffer, nbytes, flags)


class _Connection(TConn):
    """gunicorn's connection, closed without holding up the worker's main loop."""

    lingering: ThreadPoolExecutor  # set by the worker

    def close(self, graceful=False):
        if graceful and not getattr(self.sock, "stalled", False):
            self.lingering.submit(super().close, True)
        else:
            super().close()


class ReadTimeoutWorker(ThreadWorker):
    """gunicorn's gthread worker, each client socket bounded by the read timeout."""

    def init_process(self):
        from .config import Config

        self.read_timeout = Config.from_env().read_timeout_seconds
        # Each lingering close waits at most 2 s (gunicorn's close_graceful); a few threads keep
        # up with any honest load, and a backlog only delays closing sockets, nothing else.
        _Connection.lingering = ThreadPoolExecutor(max_workers=4, thread_name_prefix="linger")
        super().init_process()

    def enqueue_req(self, conn):
        # Every connection passes here before a thread first reads from it.
        if not isinstance(conn.sock, _ReadTimeoutSocket):
            conn.sock = _ReadTimeoutSocket.adopt(conn.sock, self.read_timeout)
            conn.__class__ = _Connection
        super().enqueue_req(conn)


class DevRequestHandler(WSGIRequestHandler):
    """werkzeug's dev server handler, logging request lines without their query strings: access
    keys travel in `?accesskey=` for compatibility and must not land in logs (gunicorn's access
    log format leaves the query out too)."""

    def log(self, type: str, message: str, *args) -> None:
        super().log(type, message, *(_QUERY.sub("", a) if isinstance(a, str) else a for a in args))


# A query string inside a logged request line: from "?" to the next blank or quote.
_QUERY = re.compile(r"\?[^\s'\"]*")
