"""The benchmark behind `nox -s bench` and the tiny-wheel builder tests share.

Kept outside the `pinsync` package: `pip install .` ships the product only.
"""
