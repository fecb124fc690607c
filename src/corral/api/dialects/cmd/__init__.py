"""CMD Executor's API (``/api/auth`` so far): camelCase, ``{"success": true, ...}`` bodies."""
