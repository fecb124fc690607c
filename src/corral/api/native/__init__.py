"""The executor-queue document's API, Corral's native face, under ``/api/v1``."""
