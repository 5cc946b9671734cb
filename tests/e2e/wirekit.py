"""Real agents and a real ``squ`` console config, wired together for the wire e2e tests.

``Wire(tmp_path)`` makes a console config dir with an operator key (``squ
keygen``); ``wire.agent("db1")`` starts a real ``squ-agentd serve`` listening on
a free loopback port, authorises the operator as admin and adds the agent to
fleet.toml; ``wire.squ(...)`` runs the ``squ`` CLI as a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.agentkit import ROOT, AgentProc, _pythonpath, wait_for


class Wire:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.config = tmp_path / "console"
        self.agents: dict[str, AgentProc] = {}
        self.fingerprints: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        result = self.squ_process("keygen", "-C", "alice@test")
        assert result.returncode == 0, result.stderr
        self.public_line = (self.config / "id_ed25519.pub").read_text().strip()

    def squ(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``squ --config-dir CONFIG ARGS`` in this process (the CLI's own ``main``).

        Same argv, exit code, stdout and stderr as the command line, without paying
        the interpreter start-up for each call; ``squ_process`` runs a real process.
        """
        from console.cli import main

        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
        argv = ["--config-dir", str(self.config), *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 2
        return subprocess.CompletedProcess(
            argv,
            code,
            stdout=out.buffer.getvalue().decode(),  # type: ignore[attr-defined]
            stderr=err.buffer.getvalue().decode(),  # type: ignore[attr-defined]
        )

    def squ_process(
        self, *args: str, timeout_s: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``squ --config-dir CONFIG ARGS`` as a subprocess and capture its output."""
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "console", "--config-dir", str(self.config), *args]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env, input=input
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "console", "--config-dir", str(self.config), *args]
        return subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def agent(
        self, name: str, *, role: str = "admin", add: bool = True, tls: bool = False
    ) -> AgentProc:
        """Start agent ``name`` on a free loopback port, the operator authorised as ``role``.

        ``tls``: give it a certificate first (as ``squ-agentd init`` does), so it serves wss://.
        """
        proc = AgentProc(self.tmp / name)
        if tls:
            from agentd.server.boot import init_server_files

            self.fingerprints[name] = init_server_files(proc.data_dir, "localhost")
        (proc.data_dir / "agentd.toml").write_text(
            f'[agent]\nname = "{name}"\n\n[server]\nlisten = "127.0.0.1"\nport = 0\n'
        )
        self.authorise(proc, role)
        proc.start()
        self.agents[name] = proc
        self.url(name)
        if add:
            result = self.squ("agents", "add", name, self.url(name))
            assert result.returncode == 0, result.stderr
        return proc

    def authorise(self, proc: AgentProc, role: str) -> None:
        path = proc.data_dir / "authorized_operators"
        path.write_text(f"{role} alice {self.public_line}\n")
        path.chmod(0o600)

    def url(self, name: str) -> str:
        """The agent's listen URL (asked once, then remembered: it keeps its port)."""
        if name not in self.urls:
            proc = self.agents[name]
            found = wait_for(lambda: proc.request("status").get("listen"), what="listen url")
            self.urls[name] = str(found)
            # Pin the port, so a restart (after kill -9 too) comes back where fleet.toml points.
            path = proc.data_dir / "agentd.toml"
            port = self.urls[name].rsplit(":", 1)[1]
            path.write_text(path.read_text().replace("port = 0", f"port = {port}"))
        return self.urls[name]

    def cleanup(self) -> None:
        for proc in self.agents.values():
            proc.cleanup()
