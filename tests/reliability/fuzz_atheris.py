"""``make fuzz``: coverage-guided fuzzing (atheris/libFuzzer) of the sans-IO HTTP handler and
the endpoint parser, with the checks of ``tests/reliability/http_fuzz.py``.

    python -m tests.reliability.fuzz_atheris CORPUS_DIR tests/reliability/fuzz_regressions \
        -max_total_time=60 -artifact_prefix=DIR/

(libFuzzer reads every directory given and adds what it finds to the first.)

The first input byte picks the target; for HTTP the next bytes say where the input is cut into
reads. A crashing input is written by libFuzzer to ``-artifact_prefix``: copy it to
``tests/reliability/fuzz_regressions/`` and the regression test replays it on every CI run.
"""

from __future__ import annotations

import sys

import atheris

# Instrument fastsock before anything imports it (coverage is what guides the fuzzer).
with atheris.instrument_imports(include=["fastsock"]):
    import fastsock.address
    import fastsock.handlers.http
    import fastsock.http.paths  # noqa: F401

from tests.reliability import http_fuzz  # noqa: E402
from tests.reliability.http_fuzz import make_site, make_site_dir, replay  # noqa: E402

# The site the HTTP target serves: in .fuzz/ (make fuzz's directory), not a temporary directory,
# since libFuzzer exits without Python's exit handlers.
SITE_DIR = ".fuzz/site"


def main() -> None:
    http_fuzz._SITE = make_site(make_site_dir(SITE_DIR))
    atheris.Setup(sys.argv, replay)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
