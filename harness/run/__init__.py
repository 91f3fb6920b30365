"""The scheduler side: the run's cells, a cell's workers, their follow-ups and the live view."""
