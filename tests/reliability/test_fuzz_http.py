"""Issue 15, item 3 (CI part): hypothesis drives the sans-IO HTTP handler and the endpoint
parser with hostile input. ``make fuzz`` runs the same checks under atheris, coverage-guided.

``FASTSOCK_FUZZ_EXAMPLES`` sets how many inputs each test tries (default 300, the same ones on
every run; with the variable set, random ones).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsock.address import Endpoint, EndpointError, parse_endpoint
from tests.reliability.http_fuzz import check_output, make_site, make_site_dir, run_handler

EXAMPLES = int(os.environ.get("FASTSOCK_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    # CI tries the same inputs on every run (a failure is reproducible, never a coin toss);
    # make soak, which sets FASTSOCK_FUZZ_EXAMPLES, explores new ones.
    derandomize="FASTSOCK_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,  # a loaded CI machine; hangs are caught by the test's timeout
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
SITE = make_site(make_site_dir())

SEGMENTS = st.sampled_from(
    [
        "",
        ".",
        "..",
        "%2e%2e",
        "%2E.",
        ".%2e",
        "a.txt",
        "dir",
        "link.txt",
        "up",
        "secret.txt",
        "%2f",
        "..%2f",
        "%00",
        "%",
        "%zz",
        "\\..",
        "index.html",
        "?",
        "#",
        "x" * 300,
        "%c0%ae",
    ]
)
PATHS = st.lists(SEGMENTS, max_size=6).map(lambda segs: "/" + "/".join(segs))
METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "OPTIONS", "BREW", "get", ""])
HEADERS = st.sampled_from(
    [
        "Host: x",
        "Range: bytes=0-2",
        "Range: bytes=5-1",
        "Range: bytes=-999999999999999999999",
        "Range: bytes=0-0,2-3",
        "If-None-Match: *",
        "If-Modified-Since: garbage",
        "Content-Length: 5",
        "Content-Length: 99999999999",
        "Content-Length: -1",
        "Transfer-Encoding: chunked",
        "Connection: close",
        "Connection: keep-alive",
        "Upgrade: websocket",
        "Expect: 100-continue",
        "X: " + "y" * 2000,
        ": empty-name",
        "Bad Header",
    ]
)
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "", "http/1.1"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = f"{draw(METHODS)} {draw(PATHS)} {draw(VERSIONS)}"
    headers = draw(st.lists(HEADERS, max_size=5))
    body = draw(st.binary(max_size=12))
    return ("\r\n".join([line, *headers]) + "\r\n\r\n").encode() + body


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


@pytest.mark.timeout(120 + EXAMPLES // 20)
@FUZZ
@given(
    reqs=st.lists(st.one_of(requests(), st.binary(max_size=200)), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    eof=st.booleans(),
)
def test_http_handler_survives_anything_and_answers_valid_http(reqs, cuts, eof):
    data = b"".join(reqs)
    transport = run_handler(SITE, split(data, cuts), eof)
    check_output(bytes(transport.out))


@pytest.mark.timeout(60 + EXAMPLES // 50)
@FUZZ
@given(text=st.one_of(st.text(max_size=150), st.from_regex(r"(unix:|tcp://)[\[\]:@/.\w\d]{0,40}")))
def test_endpoint_parser_accepts_or_refuses_with_one_message(text):
    try:
        endpoint = parse_endpoint(text)
    except EndpointError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert isinstance(endpoint, Endpoint)
    assert parse_endpoint(str(endpoint)) == endpoint  # what it prints, it reads back
