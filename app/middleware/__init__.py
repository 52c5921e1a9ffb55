"""ASGI middleware, one module each, named for what it does."""
