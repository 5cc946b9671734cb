"""Alerts on the agent: recorded with the state change that caused them, delivered from the store.

* ``schema``   the tables (migration ``0002_alerts`` in agentd/store/schema.py)
* ``store``    SQL: record (called by agentd/store/executions.py), route, deliver, ack, sync
* ``config``   ``[alerts]`` and ``[alerts.channel.NAME]`` of agentd.toml
* ``channels`` webhook, command, email
* ``delivery`` the loop: route new alerts, rate-limit, send, retry with backoff; long-running

See docs/alerts.md. Kept import-light: the store imports ``agentd.alerts.store``.
"""
