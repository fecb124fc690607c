"""Use cases: the only callers of the store. Every face (API dialects, CLI) calls these."""
