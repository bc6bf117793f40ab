"""Which engine runs: auto, native, python, the fallback when the native module is missing, and
the native engine's histogram arithmetic against HdrHistogram's own."""

from __future__ import annotations

import random
import shutil
import sys

import pytest

from fastsock.address import unix_endpoint
from fastsock.load import ConfigError, run_load
from fastsock.load.histogram import HIGHEST_NS, LOWEST_NS, LatencyRecorder, new_histogram
from fastsock.native import MODULE, load_engine_module
from tests.load.conftest import quick_config


@pytest.fixture
def no_native(monkeypatch) -> None:
    """The native module made unavailable: importing it raises ImportError."""
    monkeypatch.setitem(sys.modules, MODULE, None)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: nothing to build")
def test_the_install_built_the_native_engine() -> None:
    module, why = load_engine_module()
    assert module is not None, why


def test_auto_runs_native_when_built(fastsock_server, capsys) -> None:
    server = fastsock_server("echo", "unix")
    result = run_load(quick_config(server.endpoint, engine="auto"))
    assert result["params"]["engine"] == "native"
    assert result["errors"]["total"] == 0
    assert capsys.readouterr().err == ""


def test_auto_falls_back_with_one_note(fastsock_server, capsys, no_native) -> None:
    server = fastsock_server("echo", "unix")
    result = run_load(quick_config(server.endpoint, engine="auto"))
    assert result["params"]["engine"] == "python"
    assert result["errors"]["total"] == 0 and result["messages"] > 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "native load engine is not built" in err and "using the Python engine" in err


def test_native_without_the_module_is_a_usage_error(fastsock_server, no_native) -> None:
    server = fastsock_server("echo", "unix")
    with pytest.raises(ConfigError, match="--engine native"):
        run_load(quick_config(server.endpoint, engine="native"))


def test_native_has_no_http_workload() -> None:
    config = quick_config(
        unix_endpoint("/nonexistent.sock"),
        workload="http",
        path="/x",
        engine="native",
    )
    with pytest.raises(ConfigError, match="no http workload"):
        config.validate()


def test_native_bucket_index_is_hdrhistograms() -> None:
    module, why = load_engine_module()
    if module is None:
        pytest.fail(why)
    recorder = LatencyRecorder()
    hist = new_histogram()
    rng = random.Random(11)
    values = [1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 10**6, 10**9, HIGHEST_NS]
    values += [rng.randrange(1, HIGHEST_NS) for _ in range(2000)]
    values += [int(2 ** rng.uniform(0, 41)) for _ in range(2000)]
    for v in values:
        got = module.hist_index(v, recorder.half_magnitude, LOWEST_NS, HIGHEST_NS)
        assert got == hist._counts_index_for(v), v
    # Out of range: clamped like LatencyRecorder.fold does.
    assert module.hist_index(0, recorder.half_magnitude, LOWEST_NS, HIGHEST_NS) == (
        hist._counts_index_for(LOWEST_NS)
    )
    assert module.hist_index(HIGHEST_NS * 5, recorder.half_magnitude, LOWEST_NS, HIGHEST_NS) == (
        hist._counts_index_for(HIGHEST_NS)
    )


def test_progress_line_on_both_engines(fastsock_server, capsys, engine: str) -> None:
    # The native engine runs with the GIL released; its progress comes from a sampler thread.
    server = fastsock_server("echo", "unix")
    result = run_load(quick_config(server.endpoint, duration=0.8, progress=True, engine=engine))
    assert result["errors"]["total"] == 0
    err = capsys.readouterr().err
    assert "measuring" in err and "msgs/s" in err
