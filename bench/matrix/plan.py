"""Read ``matrix.toml``, apply a profile, check it, and expand experiments into variants.

A *variant* is one point to measure: server, transport, size, conns, depth, placement, rate.
Variants of an experiment are ordered with transport innermost, so the UNIX and TCP runs of a
point run back to back (their ratio is then paired in time) -- see :func:`schedule`.
"""

from __future__ import annotations

import itertools
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from fastsock import trials
from fastsock.jsonout import read_document
from fastsock.report.summary import STREAM_TRANSPORTS

MATRIX_FILE = Path(__file__).resolve().parent / "matrix.toml"
KINDS = ("rtt", "closed", "open")
SWEEPS = ("size", "conns", "server", "placement", "rate")
# Stream transports (every server, every kind), then the other socket types (fastsock serve
# --type; closed loop only), then the floor: channels with no server at all (fastsock/floor.py,
# closed loop only; the variant's server is ignored and the echo child answers).
SOCKET_TYPES = {
    **dict.fromkeys(STREAM_TRANSPORTS, "stream"),
    "unix-seqpacket": "seqpacket",
    "unix-dgram": "dgram",
    "udp": "dgram",
}
FLOOR_TRANSPORTS = ("pipe", "socketpair", "socketpair-seqpacket")
TRANSPORTS = (*SOCKET_TYPES, *FLOOR_TRANSPORTS)
# Servers that take `--type seqpacket|dgram`.
TYPED_SERVERS = ("fastsock",)
SETTINGS = {
    "repeats": int,
    "duration": float,
    "warmup": float,
    "rtt_values": int,
    "rtt_warmups": int,
    "rtt_processes": int,
}
# Settings a profile may leave out, with their defaults.
#   restart_every  start every server afresh after this many rounds (0: never). A server
#                  instance has a speed of its own (issue 22: CV 0.08 between instances, 0.12
#                  between runs of one), so the trials must sample instances too, not one.
#   seed           the trial order's seed; none: a new random order every run (recorded).
#   rerun_limit    how many rounds of an experiment may be run again because outside load
#                  (another process, steal) was seen during one of their trials.
#   outside_cores  how many cores other processes may use during a trial before it counts as
#                  disturbed (fastsock.interference.OTHER_CORES_LIMIT by default).
OPTIONAL_SETTINGS = {
    "restart_every": (int, 0),
    "seed": (int, None),
    "rerun_limit": (int, 3),
    "outside_cores": ((int, float), 0.25),
}
EXPERIMENT_KEYS = {
    "name",
    "kind",
    "sweep",
    "title",
    "question",
    "servers",
    "transports",
    "sizes",
    "conns",
    "depth",
    "placements",
    "rate_fractions",
    "calibration_depth",
    "client",
    "profiles",
}
# Load generators: `fastsock load` (latency histograms, every byte verified) or the C reference
# load client (throughput only; far cheaper per message, so a fast server sets the pace).
CLIENTS = ("fastsock", "c")
MAX_SIZE = 16 << 20  # what `fastsock load` accepts


class MatrixError(Exception):
    """A problem in the matrix file; ``str()`` is a one-line message."""


@dataclass(frozen=True)
class Variant:
    server: str
    transport: str
    size: int
    conns: int = 1
    depth: int = 1
    placement: str = "unpinned"
    rate: float | None = None

    def as_dict(self) -> dict:
        return {
            "server": self.server,
            "transport": self.transport,
            "size": self.size,
            "conns": self.conns,
            "depth": self.depth,
            "placement": self.placement,
            "rate": self.rate,
        }

    def describe(self) -> str:
        rate = f" @{self.rate:.0f}/s" if self.rate else ""
        return (
            f"{self.server} {self.transport} {self.size}B {self.conns}c"
            f"{'' if self.depth == 1 else f'x{self.depth}'} {self.placement}{rate}"
        )


@dataclass
class Experiment:
    name: str
    kind: str
    sweep: str
    title: str
    question: str
    params: dict
    skipped: list[dict] = field(default_factory=list)

    def variants(self, rates: list[float] | None = None) -> list[Variant]:
        """Every point, transport innermost. ``rates``: open loop's absolute rates."""
        p = self.params
        out = []
        for server, size, conns, depth, place, rate, transport in itertools.product(
            p["servers"],
            p["sizes"],
            p["conns"],
            p["depth"],
            p["placements"],
            rates if rates is not None else [None],
            p["transports"],
        ):
            out.append(Variant(server, transport, size, conns, depth, place, rate))
        return out


@dataclass
class Matrix:
    profile: str
    settings: dict
    placements: dict[str, dict[str, list[int]]]
    experiments: list[Experiment]


def _list(exp: str, key: str, value: object, kind: type) -> list:
    if not isinstance(value, list) or not value:
        raise MatrixError(f"experiment {exp}: {key} must be a non-empty list")
    for item in value:
        ok = isinstance(item, kind) and not isinstance(item, bool)
        if kind is float:
            ok = isinstance(item, int | float) and not isinstance(item, bool) and item > 0
        if not ok:
            raise MatrixError(f"experiment {exp}: {key} has a bad entry {item!r}")
    return value


def _experiment(
    raw: dict, profile: str, profiles: set[str], placements: dict, known_servers: set[str]
) -> Experiment:
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise MatrixError(f"experiment name {name!r} must be a simple identifier")
    # A sub-table named after a profile ([experiments.full]) overrides keys in that profile.
    unknown = set(raw) - EXPERIMENT_KEYS - profiles
    if unknown:
        raise MatrixError(f"experiment {name}: unknown key(s) {', '.join(sorted(unknown))}")
    merged = {k: v for k, v in raw.items() if k not in profiles}
    override = raw.get(profile, {})
    bad = set(override) - EXPERIMENT_KEYS - {"name"}
    if bad:
        raise MatrixError(f"experiment {name}.{profile}: unknown key(s) {', '.join(sorted(bad))}")
    merged.update(override)
    merged.setdefault("conns", [1])
    merged.setdefault("depth", [1])
    merged.setdefault("placements", ["unpinned"])
    merged.setdefault("client", "fastsock")
    merged.setdefault("profiles", sorted(profiles))
    for prof in _list(name, "profiles", merged["profiles"], str):
        if prof not in profiles:
            raise MatrixError(f"experiment {name}: profiles names an unknown profile {prof!r}")
    kind, sweep = merged.get("kind"), merged.get("sweep")
    if kind not in KINDS:
        raise MatrixError(f"experiment {name}: kind must be one of {', '.join(KINDS)}")
    if sweep not in SWEEPS:
        raise MatrixError(f"experiment {name}: sweep must be one of {', '.join(SWEEPS)}")
    for key in ("title", "question"):
        if not isinstance(merged.get(key), str):
            raise MatrixError(f"experiment {name}: {key} must be a string")
    for key in ("servers", "transports", "placements"):
        _list(name, key, merged.get(key), str)
    for key in ("sizes", "conns", "depth"):
        for v in _list(name, key, merged.get(key), int):
            if not 1 <= v <= (MAX_SIZE if key == "sizes" else 100_000):
                raise MatrixError(f"experiment {name}: {key} value {v} is out of range")
    if merged["client"] not in CLIENTS:
        raise MatrixError(f"experiment {name}: client must be one of {', '.join(CLIENTS)}")
    if merged["client"] != "fastsock" and kind != "closed":
        raise MatrixError(f"experiment {name}: client = {merged['client']!r} is for kind = closed")
    for t in merged["transports"]:
        if t not in TRANSPORTS:
            raise MatrixError(f"experiment {name}: unknown transport {t!r}")
        if t not in STREAM_TRANSPORTS and (kind != "closed" or merged["client"] != "fastsock"):
            raise MatrixError(
                f"experiment {name}: transport {t} is measured in closed loop by fastsock load "
                "only (kind = closed, client = fastsock)"
            )
        if SOCKET_TYPES.get(t, "stream") != "stream":
            for s in merged.get("servers") or []:
                if s not in TYPED_SERVERS:
                    raise MatrixError(f"experiment {name}: server {s} cannot serve {t}")
    for s in merged["servers"]:
        if s not in known_servers:
            raise MatrixError(f"experiment {name}: unknown server {s!r}")
    for pl in merged["placements"]:
        if pl not in placements:
            raise MatrixError(f"experiment {name}: placement {pl!r} is not in [placements]")
    if kind == "open":
        _list(name, "rate_fractions", merged.get("rate_fractions"), float)
        depth = merged.setdefault("calibration_depth", 1)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 1000:
            raise MatrixError(f"experiment {name}: calibration_depth must be 1-1000")
    elif "rate_fractions" in merged or "calibration_depth" in merged:
        raise MatrixError(
            f"experiment {name}: rate_fractions/calibration_depth are for kind = open"
        )
    if kind == "rtt" and (merged["conns"] != [1] or merged["depth"] != [1]):
        raise MatrixError(f"experiment {name}: rtt runs one connection with depth 1")
    params = {
        k: merged[k] for k in merged if k not in ("name", "kind", "sweep", "title", "profiles")
    }
    params["profiles"] = merged["profiles"]
    params.pop("question")
    return Experiment(name, kind, sweep, merged["title"], merged["question"], params)


def load_matrix(
    path: Path = MATRIX_FILE, profile: str = "quick", known_servers: set[str] | None = None
) -> Matrix:
    """Parse and check the matrix; raise :class:`MatrixError` with a one-line message."""
    raw = read_document(path, tomllib.loads, MatrixError, "valid TOML")
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise MatrixError(f"{path}: no profile {profile!r} (have: {', '.join(profiles)})")
    settings = dict(profiles[profile])
    for key, kind in SETTINGS.items():
        if key not in settings:
            raise MatrixError(f"{path}: profile {profile} has no {key}")
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise MatrixError(f"{path}: profile {profile}: {key} must be a number >= 0")
        settings[key] = kind(value)
    if settings["repeats"] < 1 or settings["duration"] <= 0 or settings["rtt_values"] < 1:
        raise MatrixError(f"{path}: profile {profile}: repeats, duration, rtt_values must be > 0")
    settings["rtt_processes"] = max(1, settings["rtt_processes"])
    for key, (kind, default) in OPTIONAL_SETTINGS.items():
        value = settings.setdefault(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise MatrixError(f"{path}: profile {profile}: {key} must be a number")
        if value is not None and value < 0:
            raise MatrixError(f"{path}: profile {profile}: {key} must be >= 0")
    placements = _placements(raw.get("placements", {"unpinned": {}}), path)
    if known_servers is None:
        from bench.peers.registry import PEERS

        known_servers = set(PEERS)
    exps = [
        _experiment(e, profile, set(profiles), placements, known_servers)
        for e in raw.get("experiments", [])
    ]
    if not exps:
        raise MatrixError(f"{path}: no [[experiments]]")
    names = [e.name for e in exps]
    if len(set(names)) != len(names):
        raise MatrixError(f"{path}: experiment names must be unique")
    exps = [e for e in exps if profile in e.params["profiles"]]
    return Matrix(profile, settings, placements, exps)


def _placements(raw: dict, path: Path) -> dict[str, dict[str, list[int]]]:
    out = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict) or set(spec) - {"server", "client"}:
            raise MatrixError(f"{path}: placement {name} takes only server = [...], client = [...]")
        for who, cpus in spec.items():
            if (
                not isinstance(cpus, list)
                or not cpus
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cpus)
            ):
                raise MatrixError(f"{path}: placement {name}.{who} must be a list of CPU numbers")
        out[name] = {k: list(v) for k, v in spec.items()}
    return out


# What a block holds besides its transports: the other servers (sweep = server) or placements
# (sweep = placement) of one point, since the findings compare those with each other too.
BLOCK_SWEEPS = ("server", "placement")


def block_key(v: Variant, sweep: str) -> tuple:
    """Variants with the same key form one block: they run back to back in every round, and
    only variants of one block are compared with each other (see fastsock.trials)."""
    return (
        None if sweep == "server" else v.server,
        v.size,
        v.conns,
        v.depth,
        None if sweep == "placement" else v.placement,
        v.rate,
    )


def blocks(variants: list[Variant], sweep: str) -> list[list[Variant]]:
    out: dict[tuple, list[Variant]] = {}
    for v in variants:
        out.setdefault(block_key(v, sweep), []).append(v)
    return list(out.values())


def schedule(
    variants: list[Variant], sweep: str, rounds: int, seed: int | None, salt: str = ""
) -> list[list[list[Variant]]]:
    """Each round's blocks in run order, each block's variants back to back in a balanced
    rotation (fastsock.trials.schedule_blocks). ``salt`` (the experiment's name) gives every
    experiment an order of its own from one seed."""
    if seed is not None:
        seed = seed ^ zlib.crc32(salt.encode())
    return trials.schedule_blocks(blocks(variants, sweep), rounds, seed)
