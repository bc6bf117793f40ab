"""A test client that echoes many payloads over many connections at once, without deadlock.

It writes and reads each connection concurrently through one selector, the way a real client
must (a client that writes 8 MiB before reading deadlocks against any echo server).
"""

from __future__ import annotations

import selectors
import socket
import time

from fastsock.address import Endpoint


def echo_many(endpoint: Endpoint, payloads: list[bytes], timeout: float = 30.0) -> list[bytes]:
    """Send ``payloads[i]`` on connection ``i``, shut the write side, and return what came back
    on each connection up to the server's EOF."""
    sel = selectors.DefaultSelector()
    states = []
    try:
        for payload in payloads:
            sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(endpoint.sockaddr)
            sock.setblocking(False)
            state = {"sock": sock, "out": memoryview(payload), "in": bytearray(), "eof": False}
            states.append(state)
            sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, state)
        deadline = time.monotonic() + timeout
        open_count = len(states)
        while open_count:
            if time.monotonic() > deadline:
                raise TimeoutError("echo did not complete in time")
            for key, mask in sel.select(1.0):
                st = key.data
                sock = st["sock"]
                if mask & selectors.EVENT_WRITE:
                    if st["out"]:
                        sent = sock.send(st["out"][: 1 << 20])
                        st["out"] = st["out"][sent:]
                    if not st["out"]:
                        sock.shutdown(socket.SHUT_WR)
                        sel.modify(sock, selectors.EVENT_READ, st)
                if mask & selectors.EVENT_READ:
                    chunk = sock.recv(1 << 20)
                    if chunk:
                        st["in"] += chunk
                    else:
                        sel.unregister(sock)
                        st["eof"] = True
                        open_count -= 1
        return [bytes(st["in"]) for st in states]
    finally:
        for st in states:
            st["sock"].close()
        sel.close()
