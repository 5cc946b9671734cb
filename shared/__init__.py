"""Pure logic both sides agree on: no asyncio, sockets, SQLite, clock or environment."""
