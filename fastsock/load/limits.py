"""How large one message may be on a message-keeping socket: UDP's protocol limit, or what a
UNIX datagram or seqpacket socket's send buffer takes here. ``LoadConfig`` checks ``--size``
against it before a run; the datagram engine frames every datagram with ``HEADER``."""

from __future__ import annotations

import socket
import struct

from fastsock.address import Endpoint

HEADER = struct.Struct("<QI")  # sequence number, socket index: the datagram engine's framing
MIN_SIZE = HEADER.size
UDP_MAX = 65_507  # 65,535 - 8 (UDP header) - 20 (IPv4 header)
UDP6_MAX = 65_527  # IPv6: the 40-byte header is not counted in the payload length


def max_size(endpoint: Endpoint, sock_type: int = socket.SOCK_DGRAM) -> int:
    """The largest datagram the kernel takes on this path: UDP's protocol limit, or for UNIX
    what a client socket's send buffer allows (SO_SNDBUF, capped by net.core.wmem_max),
    measured by asking the kernel rather than assumed."""
    if not endpoint.is_unix:
        return UDP6_MAX if endpoint.family == socket.AF_INET6 else UDP_MAX
    with socket.socket(socket.AF_UNIX, sock_type) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
        sndbuf = probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    # The buffer also carries the kernel's per-datagram overhead (an skb): leave it room.
    return sndbuf - 1024 * (1 + sndbuf // (256 * 1024))
