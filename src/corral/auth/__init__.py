"""Who may do what: API token hashing, passwords, login JWTs and the one authorization policy."""
