"""Two network namespaces joined by a veth pair: the path a container's TCP takes to its host.

:func:`veth_pair` creates ``<prefix><pid>s`` (the server side, 198.18.0.1/30) and
``<prefix><pid>c`` (the client side, 198.18.0.2/30) and deletes them when the block ends, also on
an exception. Addresses are from the RFC 2544 benchmarking range 198.18.0.0/15 and the
namespaces have no route anywhere else, so no packet can leave them. Processes started inside
are the caller's to stop; :func:`cleanup` also kills (by PID) any process still inside one of
our namespaces, then deletes every namespace and link whose name starts with ``PREFIX`` — the
leftovers of a run that was killed before its ``finally`` (a run still alive keeps its own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

PREFIX = "fsapps"
SERVER_ADDR = "198.18.0.1"
CLIENT_ADDR = "198.18.0.2"


class NetnsError(RuntimeError):
    """Namespaces cannot be made here (no ip, no privilege); the message says which."""


@dataclass(frozen=True)
class VethPair:
    server_ns: str
    client_ns: str
    server_link: str
    client_link: str

    def exec_in(self, ns: str) -> tuple[str, ...]:
        """argv prefix that runs a program in ``ns`` (``ip netns exec`` execs: same PID)."""
        return ("ip", "netns", "exec", ns)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "the ip command is missing (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    return None


def our_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def our_links() -> list[str]:
    out = _ip("-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            name = parts[1].strip().split("@", 1)[0]
            if name.startswith(PREFIX):
                names.append(name)
    return names


def pids_inside(ns: str) -> list[int]:
    """PIDs of the processes whose network namespace is ``ns``."""
    out = _ip("netns", "pids", ns, check=False).stdout
    return [int(pid) for pid in out.split() if pid.isdigit()]


def _kill_inside(ns: str) -> None:
    for pid in pids_inside(ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _owner_alive(name: str) -> bool:
    """Is the run that made ``name`` (its tag is that run's PID) another live process?"""
    tag = name[len(PREFIX) : -1]
    if not tag.isdigit() or int(tag) == os.getpid():
        return False
    try:
        os.kill(int(tag), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup() -> None:
    """Stop what runs inside our namespaces (SIGKILL by PID), delete them and our links --
    except those of another run that is still alive (two runs at once leave each other be)."""
    for ns in our_namespaces():
        if _owner_alive(ns):
            continue
        _kill_inside(ns)
        _ip("netns", "delete", ns, check=False)
    for link in our_links():  # deleting one end of a veth pair deletes both
        if not _owner_alive(link):
            _ip("link", "delete", link, check=False)


@contextlib.contextmanager
def veth_pair() -> Iterator[VethPair]:
    """Create the two namespaces and the veth pair between them; always delete them after.

    The names carry this process's PID, so :func:`cleanup` in another run leaves them be while
    we live; one process has one pair at a time."""
    reason = available()
    if reason:
        raise NetnsError(reason)
    tag = str(os.getpid())  # <= 7 digits: names stay within IFNAMSIZ (15)
    pair = VethPair(f"{PREFIX}{tag}s", f"{PREFIX}{tag}c", f"{PREFIX}{tag}s", f"{PREFIX}{tag}c")
    # These names carry our own tag: whatever already has them is a leftover of ours (a block
    # of this process that was killed half-way), never another live run's.
    _delete(pair)
    try:
        _ip("netns", "add", pair.server_ns)
        _ip("netns", "add", pair.client_ns)
        _ip("link", "add", pair.server_link, "type", "veth", "peer", "name", pair.client_link)
        for ns, link, addr in (
            (pair.server_ns, pair.server_link, SERVER_ADDR),
            (pair.client_ns, pair.client_link, CLIENT_ADDR),
        ):
            _ip("link", "set", link, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", link)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", link, "up")
        yield pair
    finally:
        _delete(pair)


def _delete(pair: VethPair) -> None:
    """SIGKILL what runs inside the pair's namespaces, then delete them and the link.

    Only a process already inside is found: one still on its way in (``ip netns exec`` before
    its setns) is the caller's to stop by PID, as every process started inside is."""
    present = our_namespaces()
    for ns in (pair.server_ns, pair.client_ns):
        if ns not in present:
            continue
        _kill_inside(ns)
        _ip("netns", "delete", ns, check=False)
    for link in (pair.server_link, pair.client_link):
        if link in our_links():
            _ip("link", "delete", link, check=False)
