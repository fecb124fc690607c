"""Octaskly's API: tasks, stats and health (``/api/v1/tasks``, ``/api/v1/stats``).

``/health`` is shared with TaskDriver and lives in ``corral.api.monitoring``.
The choices made where the document is silent are in ``docs/octaskly.md``.
"""
