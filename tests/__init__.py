"""Rosetta's image and reliability tests (a package, so ``bench`` can reuse :mod:`tests.support`)."""
