"""The HTTP layer: models, routers, errors, decoding and encoding."""
