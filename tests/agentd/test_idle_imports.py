"""Issue 8: what an idle agent never needs is not imported when it starts serving.

A fresh interpreter imports the modules ``squ-agentd serve`` loads (the CLI,
the daemon, the server) and reports which heavy modules came with them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Each is loaded on first use: a heartbeat subscriber (psutil), a cron
# description (cron_descriptor), an email alert (smtplib), a long-running check
# with enough history (statistics), a key or certificate made (cryptography);
# textual belongs to the console alone.
DEFERRED = ("psutil", "cron_descriptor", "smtplib", "statistics", "cryptography", "textual")

PROBE = f"""
import json, sys
import agentd.cli, agentd.daemon, agentd.server.boot, agentd.server.session
print(json.dumps([m for m in {list(DEFERRED)!r} if m in sys.modules]))
"""


def test_serving_modules_do_not_import_what_idle_never_uses() -> None:
    """Importing the CLI, daemon and server loads none of psutil, cron_descriptor, smtplib..."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
