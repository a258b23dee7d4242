"""The benchmark harness (not tests): `python -m bench` or `make bench`. See __main__.py."""
