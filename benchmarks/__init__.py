"""
The scripts that users run to reproduce the documented results, from the repository root:
``python benchmarks/<name>.py`` (reproduce.py, pixels_run.py, plot.py, suite_table.py, throughput.py,
export_latency.py, package_agents.py). A package so that the tests and the studies import them
(``from benchmarks import reproduce``); not part of the installed package.
"""
