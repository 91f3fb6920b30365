"""The compatibility report: read the cells' JUnit files (model), write one file per format.

``model`` reads JUnit into cells x cases with a state each; ``jsonfile``, ``markdown``, ``html`` and
``junit`` write compat.json, compat.md, compat.html and the merged junit.xml; ``build`` runs them.
"""

SYMBOLS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "skipped": "⏭️",
    "not-applicable": "➖",
    "missing": "❓",
    "timeout": "⏱️",
    "known-incompatible": "🔶",
    "unexpectedly-passing": "❗",
    "flaky": "🔁",
}
