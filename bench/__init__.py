"""The benchmark harness: peers, runner, plots and the report writer."""
