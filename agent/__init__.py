"""The worker agent: watches escrowed jobs, runs them in a hardened Docker sandbox, posts result hashes."""
