"""The aiohttp edges: REST API, health, metrics, OpenAPI."""
