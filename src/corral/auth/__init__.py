"""Who may do what: token hashing and the one authorization policy."""
