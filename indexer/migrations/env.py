"""Alembic environment: runs on the connection `indexer.db.upgrade` passes in, or on
ASCENDNET_DATABASE_URL (the indexer's settings) from the command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from indexer import models, store  # noqa: F401 - store adds the event-store tables to the metadata

config = context.config
target_metadata = models.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    from indexer.db import make_engine
    from indexer.settings import IndexerSettings

    engine = make_engine(IndexerSettings().database_url)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


main()
