"""squ-agentd: the per-server daemon that schedules, runs and records jobs."""

__version__ = "0.1.0"
