"""The warehouse's own core: paths, configuration and the embedded PostgreSQL."""
