"""Helpers shared by the test suite.

Importable without pytest: test workers import ``tests.support.worker_app``.
"""
