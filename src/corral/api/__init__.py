"""HTTP faces: the native API, the dialects, metrics; all thin adapters over the services."""
