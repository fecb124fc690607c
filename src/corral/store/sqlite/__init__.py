"""The SQLite adapter of the store: one module per concern, named as in ``postgres/``."""
