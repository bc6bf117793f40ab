"""``fastsock ab A B``: is endpoint A faster than endpoint B, with a confidence interval?

Paired, randomized, interleaved trials of the same load against two live endpoints (issue 23):

- :mod:`fastsock.ab.run` runs them in this process, calling the load engine
  (:func:`fastsock.load.run.run_load`) once per side and trial -- no process per trial;
- :mod:`fastsock.ab.report` turns the per-trial values into findings
  (:func:`fastsock.findings.finding`), the JSON document and the text summary;
- :mod:`fastsock.ab.plot` draws the per-trial values and the ratios' CIs;
- :mod:`fastsock.ab.cli` is the click command.
"""
