"""Storage: the ``Store`` port and its SQLite and PostgreSQL adapters."""
