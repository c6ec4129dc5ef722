"""The event-sourced indexer: contract logs become an append-only event store (the `eventsourcing`
library over SQLAlchemy), folded exactly once into read-model tables that the API serves."""
