"""The database: column types and metadata, the engine and its unit of work, the embedded server."""
