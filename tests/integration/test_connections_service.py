"""
Connections that must close, and caps that keep a process serving, through
the real service over real TLS on loopback (issue 14, section 1).

The clients here speak TLS through memory buffers over plain sockets, so
that they can do what a hostile client does: read the answer, then never
send close_notify and never close.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path


from smartdiscover.web.site import CLOSE_GRACE
from tests.helpers import DEMO_PASSWORD, MINIMAL_INI, edit, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port
from tests.integration.test_service import REQUEST, basic

GET_CLOSE = b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
GET_10 = b"GET /health/live HTTP/1.0\r\n\r\n"
POST = (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: " + basic("demo@example.test", DEMO_PASSWORD).encode()
        + b"\r\nContent-Length: " + str(len(REQUEST)).encode() + b"\r\n\r\n" + REQUEST)
TOO_LARGE = (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 70000\r\n\r\n" + b"x" * 70000)
TOO_LONG = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n"


class HostileTLSClient:
    """
    A TLS client over a plain socket that never closes on its own.
    """

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(source, 0))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_hostname="mail.example.test")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self._flush()

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self.raw.sendall(data)

    def _receive(self) -> bool:
        chunk = self.raw.recv(65536)
        if not chunk:
            self._in.write_eof()
            return False
        self._in.write(chunk)
        return True

    def exchange(self, request: bytes) -> bytes:
        """
        Send C{request} and read until the server ends the TLS session
        (close_notify) or the connection; our side stays open.
        """
        try:
            self.tls.write(request)
        except ssl.SSLError:
            pass
        self._flush()
        answer = b""
        while True:
            try:
                chunk = self.tls.read(65536)
                if not chunk:  # close_notify
                    return answer
                answer += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return answer
            try:
                if not self._receive():
                    return answer
            except ConnectionResetError:
                return answer

    def closed_by_server(self) -> bool:
        """
        Whether the server has closed the TCP connection (EOF or reset),
        after whatever TLS records are still unread.
        """
        self.raw.settimeout(0.2)
        try:
            while self.raw.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except (socket.timeout, BlockingIOError):
            return False

    def close(self) -> None:
        self.raw.close()


class ConnectionServiceTests(SynchronousTestCase):

    def start(self, descriptors: int | None = None) -> RunningService:
        directory = Path(self.mktemp()).absolute()
        port = free_port()
        ini = edit("https = ssl:8443:", f"https = ssl:{port}:interface=127.0.0.1:",
                   MINIMAL_INI)
        service = RunningService(write_config(directory, ini), port, descriptors=descriptors)
        self.addCleanup(service.stop)
        return service

    def client(self, service: RunningService, source: str = "127.0.0.1") -> HostileTLSClient:
        client = HostileTLSClient(service.port, source)
        self.addCleanup(client.close)
        return client

    def test_closed_after_last_response(self) -> None:
        """
        Clients that read their last response (asked to close, HTTP/1.0,
        413 once the body has arrived, 414) and then neither send
        close_notify nor close: every connection is gone within
        C{CLOSE_GRACE} and a second, and the service holds no more
        descriptors than before.  A 100 KB header gets one 414.
        """
        service = self.start()
        before = service.descriptors()
        clients = []
        for request, status in [(GET_CLOSE, b"200"), (GET_10, b"200"), (POST, b"200"),
                                (TOO_LARGE, b"413"), (TOO_LONG, b"414")] * 10:
            client = self.client(service)
            answer = client.exchange(request if request is not POST
                                     else request.replace(b"\r\n\r\n",
                                                          b"\r\nConnection: close\r\n\r\n", 1))
            self.assertEqual(answer.split(b" ", 2)[1], status, answer[:80])
            self.assertEqual(answer.count(b"HTTP/1."), 1, answer[:200])
            clients.append(client)
        # Held open after their last response: all 50 on an idle machine;
        # on a loaded one the first may already have met CLOSE_GRACE.
        self.assertGreaterEqual(service.descriptors(), before + 10)
        time.sleep(CLOSE_GRACE + 1)
        self.assertEqual([c for c in clients if not c.closed_by_server()], [])
        self.assertLessEqual(service.descriptors(), before)

    def test_served_while_an_attacker_holds_all_it_can(self) -> None:
        """
        With 256 descriptors, one attacker address opens 300 connections in
        a burst and holds them: the service keeps at most
        C{connections_per_source} of them (the rest are closed at once),
        and a client from another address is served meanwhile.
        """
        service = self.start(descriptors=256)
        held, refused = [], 0
        for _ in range(300):
            try:
                attacker = socket.create_connection(("127.0.0.1", service.port), timeout=10,
                                                    source_address=("127.0.0.3", 0))
            except ConnectionResetError:  # refused before connect() returned
                refused += 1
                continue
            self.addCleanup(attacker.close)
            held.append(attacker)
        time.sleep(0.5)
        for attacker in held:
            attacker.setblocking(False)
            try:
                refused += attacker.recv(1) == b""
            except ConnectionResetError:
                refused += 1
            except BlockingIOError:
                pass
        self.assertEqual(refused, 300 - 100)
        answer = self.client(service, "127.0.0.4").exchange(
            POST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:80])
        self.assertIn("connection from 127.0.0.3 refused", service.log())
