"""nginx -> fastsock: the proxy-to-app link, upstream over a UNIX socket vs TCP loopback.

One nginx (one worker, ``master_process off``: the PID we start is the one that proxies) with
two front ports on 127.0.0.1: the first proxies to ``fastsock serve --mode http`` over
``http://unix:...``, the second to another ``fastsock serve --mode http`` over
``http://127.0.0.1:...``. Both upstreams keep connections alive (``keepalive 32``,
``proxy_http_version 1.1``, an empty ``Connection`` header), so the measured link is the
steady state of a proxy, not connection set-up. wrk drives the front ports; only the
proxy-to-app hop differs between the two.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.apps.redis_pg import _row, order
from bench.apps.servers import AppError, _stop, _wait_until
from bench.http.clients import run_wrk, wrk_available, wrk_warmup
from bench.http.nginx import config_text, free_port, nginx_binary
from bench.http.run import make_files, size_label
from fastsock.address import tcp_endpoint
from fastsock.process import ServerProcess


def render_proxy_config(workdir: str, fronts: dict[str, int], upstreams: dict[str, str]) -> str:
    """nginx.conf: for each transport a front port on 127.0.0.1 proxying to its upstream
    (``unix:/path`` or ``127.0.0.1:PORT``) over kept-alive HTTP/1.1 connections."""
    blocks = []
    for transport, port in fronts.items():
        blocks.append(f"""    upstream app_{transport} {{
        server {upstreams[transport]};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app_{transport};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}""")
    http = """    access_log off;
    keepalive_timeout 65;
    keepalive_requests 100000000;"""
    return config_text("bench/apps/proxy.py", workdir, http, "\n".join(blocks))


class ProxyNginx:
    """The running proxy; a context manager so it is always stopped by its PID."""

    def __init__(self, upstreams: dict[str, str]) -> None:
        binary = nginx_binary()
        if binary is None:
            raise AppError("nginx is not installed (apt-get install nginx)")
        self.workdir = Path(tempfile.mkdtemp(prefix="fastsock-proxy-"))
        self.fronts = {t: free_port() for t in upstreams}
        conf = self.workdir / "nginx.conf"
        conf.write_text(render_proxy_config(str(self.workdir), self.fronts, upstreams))
        self.log = self.workdir / "stderr.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [binary, "-p", str(self.workdir), "-c", str(conf), "-e", "stderr"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.pid = self.proc.pid
        try:
            _wait_until(self._ready, "nginx", self.proc, self.log, 10.0)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        for port in self.fronts.values():
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    return False
        return True

    def stop(self) -> None:
        _stop(self.proc, signal.SIGQUIT)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ProxyNginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_body(port: int, path: str, expected: bytes) -> None:
    """One GET through the proxy must return 200 and the file's bytes (else the run is wrong)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200 or body != expected:
        raise AppError(f"proxy check: GET {path} gave {resp.status} and {len(body)} other bytes")


def run_proxy(cfg: dict, repeats: int, log) -> list[dict]:
    if not wrk_available():
        raise AppError("wrk is not installed (apt-get install wrk)")
    if nginx_binary() is None:
        raise AppError("nginx is not installed (apt-get install nginx)")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fastsock-proxy-app-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "www"
        root.mkdir()
        files = make_files(root, [int(s) for s in cfg["sizes"]])
        serve = [sys.executable, "-m", "fastsock", "serve", "--mode", "http", "--root", str(root)]
        with (
            ServerProcess([*serve, "--unix", str(tmp / "app.sock")]) as app_unix,
            ServerProcess([*serve, "--port", "0"]) as app_tcp,
        ):
            upstreams = {
                "unix": f"unix:{app_unix.endpoint.path}",
                "tcp": f"127.0.0.1:{app_tcp.endpoint.port}",
            }
            with ProxyNginx(upstreams) as nginx:
                for path in files.values():
                    for port in nginx.fronts.values():
                        _check_body(port, "/" + path.name, path.read_bytes())
                for transport in order(0):  # warm-up, discarded
                    ep = tcp_endpoint("127.0.0.1", nginx.fronts[transport])
                    wrk_warmup(ep, "/" + files[min(files)].name, conns=cfg["conns"], seconds=1)
                for repeat in range(repeats):
                    for size, path in files.items():
                        for transport in order(repeat):
                            ep = tcp_endpoint("127.0.0.1", nginx.fronts[transport])
                            res = run_wrk(
                                ep,
                                "/" + path.name,
                                conns=cfg["conns"],
                                duration=cfg["seconds"],
                                length=size,
                            )
                            if res.req_per_s <= 0:
                                raise AppError(f"wrk through the proxy failed: {res.note}")
                            params = {
                                "size": size,
                                "conns": cfg["conns"],
                                "seconds": cfg["seconds"],
                            }
                            rows.append(
                                _row(
                                    "proxy",
                                    f"nginx->fastsock {size_label(size)}",
                                    params,
                                    transport,
                                    repeat,
                                    res.req_per_s,
                                    "req_per_s",
                                    {},
                                    res.cpu_s,
                                    res.seconds,
                                    errors=res.errors,
                                )
                            )
                            log(
                                f"r{repeat} proxy {size_label(size):>4} {transport:4}: "
                                f"{res.req_per_s:.0f} req/s"
                            )
    return rows


__all__ = ["ProxyNginx", "render_proxy_config", "run_proxy"]
