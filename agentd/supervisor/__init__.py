"""The per-agent job supervisor: a long-lived process that runs jobs, and its client.

```python
sup = await SupervisorClient.connect_or_spawn(data_dir)
started = await sup.start(RunSpec(exec_id=..., argv=[...], env={...}, run_dir=...))
async for record in sup.exits(): ...; await sup.ack(record.exec_id)
```

See ``docs/execution.md`` for the behaviour and ``docs/decisions/0001-supervisor.md``
for why it is shaped this way.
"""

from __future__ import annotations

from agentd.supervisor.client import (
    DiskFull,
    SupervisorClient,
    SupervisorError,
    SupervisorUnavailable,
)
from agentd.supervisor.records import (
    ExitRecord,
    RunningInfo,
    RunSpec,
    Started,
    current_boot_id,
    is_process_alive,
    proc_start_ticks,
    read_exit_record,
)

__all__ = [
    "DiskFull",
    "ExitRecord",
    "RunSpec",
    "RunningInfo",
    "Started",
    "SupervisorClient",
    "SupervisorError",
    "SupervisorUnavailable",
    "current_boot_id",
    "is_process_alive",
    "proc_start_ticks",
    "read_exit_record",
]
