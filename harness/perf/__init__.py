"""Speed and memory across releases (issue #21): perf_analyzer per model per cell, in interleaved rounds.

``stats`` calls a change only when its confidence interval clears the threshold; ``analyzer`` finds and
reads perf_analyzer; ``settings`` is matrix.toml's ``[perf]``; ``runner`` measures. Runs on the scheduler's
side (nox's Python), never inside a cell.
"""
