"""TaskDriver's API: projects, task types, tasks, agents pulling under leases, sessions."""
