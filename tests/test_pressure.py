"""CPU pressure: the PSI counter is read where the kernel has it, and a share of the wall time."""

from __future__ import annotations

from pathlib import Path

from fastsock.pressure import cpu_pressure_us, pressure_share


def test_cpu_pressure_is_a_share_of_the_wall_time() -> None:
    assert pressure_share(1_000_000, 1_500_000, 2.0) == 0.25
    assert pressure_share(None, 5, 1.0) is None
    assert pressure_share(1, 5, 0.0) is None


def test_the_some_line_total_is_read(tmp_path: Path) -> None:
    psi = tmp_path / "cpu"
    psi.write_text(
        "some avg10=0.50 avg60=0.20 avg300=0.10 total=123456\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert cpu_pressure_us(str(psi)) == 123456
    assert cpu_pressure_us(str(tmp_path / "missing")) is None
    psi.write_text("garbage\n")
    assert cpu_pressure_us(str(psi)) is None
