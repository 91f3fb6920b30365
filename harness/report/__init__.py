"""The compatibility report: read the cells' JUnit files (model), write one file per format.

``model`` reads JUnit into cells x cases with a state each; ``diff`` compares them with a previous
compat.json (``--baseline``); ``jsonfile``, ``markdown``, ``html`` and ``junit`` write compat.json,
compat.md, compat.html and the merged junit.xml; ``build`` runs them.

``SYMBOLS`` are the Markdown's (and the console's) state symbols; the HTML has its own glyphs that need
no emoji font (``html.GLYPHS``).
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
