"""The in-pytest side: what runs inside a cell's pytest worker (plugin, fixtures, watchdog, module queue)."""
