"""Alembic environment of the history store, shipped inside the package."""
