"""One package per foreign API dialect, each over the same services as the native API."""
