"""nox -s bench: the speed figures of triton-matrix (bench/run.py) and what it reads from a run."""
