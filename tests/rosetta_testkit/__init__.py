"""What the image tests, the reliability run and the benchmarks share: the runtime table, the
bad-input cases, the raw HTTP reliability client, load generation and memory readings.

It lives with the tests (``tests/`` is on the path: pytest's ``pythonpath``, ``bench/__init__.py``)
under its own name, because ``tests`` is already the Python runtime's test package.
"""
