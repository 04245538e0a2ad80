//! Serving a folder of static files (`--public DIR`). Being written.
