"""``fastsock ab A B``: the click command around :func:`fastsock.ab.run.run_ab`.

Exit status: 0 done (whatever the verdicts), 1 errors during the trials (the trial and the side
named), 2 an unreachable endpoint or bad usage -- one line on stderr, never a traceback.
"""

from __future__ import annotations

import logging
import random
import shlex
import sys
from dataclasses import dataclass
from typing import NoReturn

import click

from fastsock.ab import report
from fastsock.ab.run import AbPlan, Unreachable, run_ab
from fastsock.address import Endpoint, EndpointError, parse_endpoint
from fastsock.jsonout import write_json_or_exit
from fastsock.load.config import (
    ConfigError,
    LoadConfig,
)
from fastsock.load.options import given, option
from fastsock.units import SizeType

FORMS = "unix:/path/app.sock, unix:@name, tcp://127.0.0.1:PORT or tcp://[::1]:PORT"
MAX_TRIALS = 10_000


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line (``fastsock ab: ...``), without click's usage block."""

    def show(self, file: object = None) -> None:
        click.echo(f"fastsock ab: {self.format_message()}", err=True)


class OneLineCommand(click.Command):
    """Every usage error of this command -- click's own (a missing argument, an unknown option,
    a bad value) and ours -- is one line on stderr with exit status 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except OneLineUsageError:
            raise
        except click.UsageError as err:
            msg = err.format_message().replace("\n", " ")
            raise OneLineUsageError(f"{msg} (see fastsock ab --help)", ctx) from None


@dataclass(frozen=True)
class Target:
    """An endpoint argument as written (``udp://`` says datagrams) and as parsed."""

    text: str
    endpoint: Endpoint


class EndpointType(click.ParamType):
    """An endpoint in the ready line's form; anything else names the accepted forms."""

    name = "ENDPOINT"

    def convert(
        self, value: str | Target, param: click.Parameter | None, ctx: click.Context | None
    ) -> Target:
        if isinstance(value, Target):
            return value
        try:
            endpoint = parse_endpoint(value)
        except EndpointError as err:
            self.fail(str(err) if err.names_forms else f"{err}; use {FORMS}", param, ctx)
        if not endpoint.is_unix and endpoint.port == 0:
            self.fail(f"{value!r} has port 0: give the port the server listens on", param, ctx)
        return Target(value, endpoint)


def _sock_type(ctx: click.Context, sock_type: str, a: Target, b: Target) -> str:
    """``udp://`` endpoints mean datagrams: ``--type dgram`` is implied, another is an error."""
    udp = [t.text for t in (a, b) if t.text.startswith("udp://")]
    if not udp:
        return sock_type
    if given(ctx, "sock_type") and sock_type != "dgram":
        raise OneLineUsageError(
            f"{udp[0]} is a datagram endpoint: --type {sock_type} cannot use it"
        )
    return "dgram"


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"fastsock ab: {message}", err=True)
    sys.exit(code)


@click.command(cls=OneLineCommand, context_settings={"show_default": True})
@click.argument("a", type=EndpointType())
@click.argument("b", type=EndpointType())
@click.option("--size", type=SizeType(), default="64", help="Echo message size (not with --http).")
@option(
    "http",
    help="HTTP load: keep-alive GETs of this URL path on both endpoints; every answer must be "
    "200 with the length and CRC-32 a probe GET found (as fastsock load --http).",
)
@option("conns")
@option("depth", help="Messages (--http: requests) in flight per connection (closed loop).")
@option(
    "rate",
    help="Open loop: messages/s in total on a fixed schedule, latency counted from the "
    "intended send time (coordinated omission corrected). Throughput is then the offered "
    "rate unless a side falls behind: compare the latencies.",
)
@click.option(
    "--trials",
    type=click.IntRange(3, MAX_TRIALS),
    default=20,
    help="Paired trials (each runs A and B back to back, in a random order).",
)
@click.option(
    "--trial-s",
    type=click.FloatRange(0.01, 3600),
    default=0.5,
    help="Measured seconds per side and trial.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(0, 3600),
    default=0.5,
    help="Seconds of the same load on each endpoint before the trials, discarded.",
)
@click.option("--seed", type=int, default=None, help="Seed of the trial order (default: random).")
@option("procs")
@option("verify-every", help="--http: CRC-32 every K-th body per connection only.")
@option("type", help="Socket type, as fastsock load --type (udp:// endpoints imply dgram).")
@option("engine")
@option("json")
@click.option("--plot", "plot_out", metavar="FILE", default=None, help="Write a PNG chart.")
@option("quiet")
@option("verbose")
def ab(
    a: Target,
    b: Target,
    size: int,
    http_path: str | None,
    conns: int,
    depth: int,
    rate: float | None,
    trials: int,
    trial_s: float,
    warmup: float,
    seed: int | None,
    procs: int,
    verify_every: int,
    sock_type: str,
    engine: str,
    json_out: str | None,
    plot_out: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Is endpoint A faster than endpoint B? Paired, randomized trials with 95% CIs.

    \b
    A and B are written as fastsock serve's ready line writes them:
      unix:/run/app.sock  unix:@name  tcp://127.0.0.1:8000  tcp://[::1]:8000
    Prints A ÷ B for throughput, p50 and p99 latency, each with its 95% CI and a verdict.
    Try A/A first on a new machine (the same endpoint twice): it must not claim a difference.

    \b
    Examples:
      fastsock ab unix:/tmp/app.sock tcp://127.0.0.1:8000
      fastsock ab unix:/run/nginx.sock tcp://127.0.0.1:8080 --http /index.html
      fastsock ab unix:@a unix:@a --trials 40          # A/A: the honesty check
    Exit status: 0 done, 1 errors during the trials, 2 unreachable endpoint or bad usage.
    """
    logging.basicConfig(
        level=logging.WARNING if verbose else logging.ERROR, format="fastsock ab: %(message)s"
    )
    ctx = click.get_current_context()
    workload = "echo"
    if http_path is not None:
        if given(ctx, "size"):
            raise OneLineUsageError("--size is not for --http: the size is the file's length")
        workload = "http"
    sock_type = _sock_type(ctx, sock_type, a, b)
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    load = LoadConfig(
        endpoint=a.endpoint,
        size=size,
        conns=conns,
        depth=depth,
        rate=rate,
        procs=procs,
        workload=workload,
        path=http_path,
        verify_every=verify_every,
        sock_type=sock_type,
        engine=engine,
    )
    plan = AbPlan(a.endpoint, b.endpoint, load, trials, trial_s, warmup, seed)
    try:
        plan = plan.validate()
    except ConfigError as err:
        raise OneLineUsageError(str(err)) from None
    _run(plan, json_out, plot_out, quiet)


def _run(plan: AbPlan, json_out: str | None, plot_out: str | None, quiet: bool) -> None:
    show = not quiet and sys.stderr.isatty()
    try:
        if show:
            with click.progressbar(
                length=2 + 2 * plan.trials, label="fastsock ab", file=sys.stderr
            ) as bar:
                run = run_ab(plan, lambda: bar.update(1))
        else:
            run = run_ab(plan)
    except Unreachable as err:
        _fail(str(err), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    found = report.findings(run)
    if json_out is not None:
        doc = report.document(run, found, shlex.join(["fastsock", *sys.argv[1:]]))
        write_json_or_exit(doc, json_out, "fastsock ab")
    if plot_out is not None and not run.trials:
        click.echo(f"fastsock ab: no trial finished: nothing to plot in {plot_out}", err=True)
    elif plot_out is not None:
        from fastsock.ab.plot import plot

        try:
            plot(run, found, plot_out)
        except OSError as err:
            _fail(f"cannot write {plot_out}: {err.strerror}", 2)
    if not quiet:
        # With --json - the JSON owns stdout; the summary goes to stderr.
        click.echo(report.summary(run, found), err=json_out == "-")
    if run.error is not None:
        _fail(run.error.text(plan.trials), 1)
