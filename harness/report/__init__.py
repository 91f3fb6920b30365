"""The compatibility report: read the cells' JUnit files (model), write one file per format.

``results`` is the results model (cells x cases with a state each); ``model`` reads JUnit into it;
``diff`` compares it with a previous compat.json (``--baseline``); ``jsonfile``, ``markdown``, ``html`` and
``junit`` write compat.json, compat.md, compat.html and the merged junit.xml; ``build`` runs them.

``SYMBOLS`` are the Markdown's (and the console's) state symbols, by state name; each state's symbol,
HTML glyph, colour and severity are defined once, in ``harness.states``.
"""

from harness.states import State

SYMBOLS = {state.value: state.symbol for state in State}
