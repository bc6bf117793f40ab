"""The container path's namespaces: made, used, and gone afterwards (no netns, no veth, no
process), also when the run fails; leftovers of a killed run are cleaned up."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from bench.apps import netns
from bench.apps.__main__ import load_matrix
from bench.apps.servers import redis_binaries
from bench.peers.registry import build_c_peers


def _can_make_namespaces() -> str | None:
    reason = netns.available()
    if reason:
        return reason
    try:
        with netns.veth_pair():
            pass
    except netns.NetnsError as err:
        return str(err)
    return None


REASON = _can_make_namespaces()
needs_netns = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}")


def _wait_inside(ns: str, pid: int) -> None:
    """Until ``pid`` has entered ``ns`` (``ip netns exec`` joins it after it was started)."""
    deadline = time.monotonic() + 10
    while pid not in netns.pids_inside(ns):
        assert time.monotonic() < deadline, f"{pid} never entered {ns}"
        time.sleep(0.02)


def _dead_pid() -> int:
    """The PID of a process that has exited: the tag of a run that was killed."""
    child = subprocess.Popen(["true"])
    child.wait(timeout=10)
    return child.pid


def _nothing_left(pair: netns.VethPair) -> None:
    assert pair.server_ns not in netns.our_namespaces()
    assert pair.client_ns not in netns.our_namespaces()
    assert pair.server_link not in netns.our_links()
    assert pair.client_link not in netns.our_links()


@needs_netns
@pytest.mark.timeout(60)
def test_veth_pair_carries_tcp_between_namespaces_and_is_deleted():
    with netns.veth_pair() as pair:
        assert {pair.server_ns, pair.client_ns} <= set(netns.our_namespaces())
        # A TCP connection from the client side to a listener on the server side's address.
        listener = subprocess.Popen(
            [*pair.exec_in(pair.server_ns), "python3", "-c",
             "import socket;s=socket.create_server(('198.18.0.1',7));print('up',flush=True);"
             "c,_=s.accept();c.sendall(c.recv(5))"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert listener.stdout.readline().strip() == "up"
            out = subprocess.run(
                [*pair.exec_in(pair.client_ns), "python3", "-c",
                 "import socket;c=socket.create_connection(('198.18.0.1',7),timeout=5);"
                 "c.sendall(b'hello');print(c.recv(5).decode())"],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
            assert out.stdout.strip() == "hello"
            # Nothing else is reachable: the client side has no route beyond its /30.
            routes = subprocess.run(
                ["ip", "-n", pair.client_ns, "route"], capture_output=True, text=True, timeout=10
            ).stdout
            assert "default" not in routes
        finally:
            listener.kill()
            listener.wait(timeout=10)
    _nothing_left(pair)


@needs_netns
@pytest.mark.timeout(60)
def test_veth_pair_is_deleted_with_its_processes_when_the_run_fails():
    with pytest.raises(RuntimeError, match="boom"), netns.veth_pair() as pair:
        sleeper = subprocess.Popen([*pair.exec_in(pair.server_ns), "sleep", "300"])
        try:
            _wait_inside(pair.server_ns, sleeper.pid)
        except BaseException:
            sleeper.kill()
            sleeper.wait(timeout=10)
            raise
        raise RuntimeError("boom")
    assert sleeper.wait(timeout=10) != 0  # killed by the cleanup, by its PID
    _nothing_left(pair)


@needs_netns
@pytest.mark.timeout(60)
def test_cleanup_removes_leftovers_of_a_killed_run():
    dead = f"{netns.PREFIX}{_dead_pid()}"  # a run whose PID is gone left these behind
    subprocess.run(["ip", "netns", "add", f"{dead}s"], check=True, timeout=10)
    subprocess.run(
        ["ip", "link", "add", f"{dead}a", "type", "veth", "peer", "name", f"{dead}b"],
        check=True, timeout=10,
    )  # fmt: skip
    sleeper = subprocess.Popen(["ip", "netns", "exec", f"{dead}s", "sleep", "300"])
    try:
        _wait_inside(f"{dead}s", sleeper.pid)
        netns.cleanup()
        assert sleeper.wait(timeout=10) != 0
        assert f"{dead}s" not in netns.our_namespaces()
        assert not {f"{dead}a", f"{dead}b"} & set(netns.our_links())
    finally:
        if sleeper.poll() is None:
            os.kill(sleeper.pid, 9)
            sleeper.wait(timeout=10)
        netns.cleanup()


@needs_netns
@pytest.mark.skipif(build_c_peers().get("load_client") is not None, reason="no C load client")
@pytest.mark.timeout(120)
def test_container_smoke_measures_three_paths_and_leaves_nothing():
    from bench.apps.veth import run_container

    rows = run_container(load_matrix()["smoke"]["container"], 1, lambda line: None)
    echo = [r for r in rows if r["case"].startswith("fastsock echo")]
    assert {r["transport"] for r in echo} == {"unix", "tcp", "veth"}
    assert all(r["value"] > 0 for r in rows)
    if redis_binaries() is not None:
        assert {r["transport"] for r in rows if r["case"].startswith("redis")} == {
            "unix", "tcp", "veth"
        }  # fmt: skip
    ours = f"{netns.PREFIX}{os.getpid()}"  # another run's live namespaces may be there: not ours
    assert not [n for n in netns.our_namespaces() if n.startswith(ours)]
    assert not [n for n in netns.our_links() if n.startswith(ours)]


@needs_netns
@pytest.mark.timeout(60)
def test_cleanup_leaves_the_namespaces_of_a_run_still_alive():
    owner = subprocess.Popen(["sleep", "300"])  # stands in for another live run
    name = f"{netns.PREFIX}{owner.pid}s"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
        netns.cleanup()
        assert name in netns.our_namespaces()
        owner.kill()
        owner.wait(timeout=10)
        netns.cleanup()
        assert name not in netns.our_namespaces()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=10)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)
