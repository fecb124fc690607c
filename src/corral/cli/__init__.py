"""The `corral` command: server, worker, and the client commands."""
