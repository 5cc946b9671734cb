"""The console side of the fleet: links to agents, the local mirror, the TUI's source."""
