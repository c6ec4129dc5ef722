"""Alembic migrations of the indexer database (env.py, versions/)."""
