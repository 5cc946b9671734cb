"""The agent's SQLite store: one writer thread, versioned migrations, SQL in small sync functions.

```python
from agentd.store import Store, executions, jobs, meta

store = await Store.open(data_dir / "agent.db")
ex = await store.call(executions.insert_execution, execution)  # None: tick already recorded
await store.close()
```

See docs/store.md for the behaviour and docs/decisions/0002-store.md for the choices.
"""

from __future__ import annotations

from agentd.store import epoch, errors, executions, jobs, meta
from agentd.store.store import Store, open_readonly

__all__ = ["Store", "epoch", "errors", "executions", "jobs", "meta", "open_readonly"]
