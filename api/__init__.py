"""The read-only HTTP API over the indexer's read models (`ascendnet api serve`)."""
