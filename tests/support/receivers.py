"""Webhook receivers that misbehave on purpose, on loopback."""

import socket
import threading


class DrippingReceiver:
    """A receiver that reads the request, then sends its answer one byte a second for `seconds`: each
    read of the sender gets a byte long before any per-read timeout (issue 10 point 2)."""

    def __init__(self, seconds=30, tls=False):
        self.seconds = seconds
        self.stop = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 1000
                for byte in answer[: self.seconds]:
                    if self.stop.wait(1):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:  # the sender hung up: what a deadline does
                return

    def close(self):
        self.stop.set()
        self.server.close()
