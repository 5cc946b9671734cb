"""``Agent``: the daemon's lifecycle and wiring.

``await Agent(config).run()`` is the whole daemon:

1. open the store and connect to the supervisor (spawning it if needed);
2. load ``jobs.d`` into the store (a broken file keeps its last good jobs);
3. reconcile every unfinished execution against the evidence (see
   ``agentd.reconcile``) so that nothing is lost and nothing runs twice;
4. fire ``@reboot`` jobs once for this start, plan misfires, then run in one
   ``TaskGroup``: the scheduler loop, the exit consumer, the control socket and
   the upkeep loop (log retention, exits that could not be recorded yet).

SIGTERM / SIGINT set the stop event: the scheduler stops first, starts in
flight get a grace period to finish (so no row is left between queued and
spawned), then everything is cancelled. Running jobs are *not* killed: they
belong to the supervisor and are re-adopted by the next start. SIGHUP reloads
``jobs.d``. ``stop()`` is safe to call twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import time
from pathlib import Path
from typing import Any

from agentd import audit, control, jobsync, reconcile
from agentd import logs as joblogs
from agentd.alerts import store as alert_sql
from agentd.alerts.delivery import AlertDispatcher
from agentd.approvals import ApprovalDesk
from agentd.config import STORE_FILE
from agentd.executor import Executor, exit_code_of
from agentd.metrics_http import start_agent_metrics
from agentd.scheduler import Scheduler, is_reboot
from agentd.store import Store
from agentd.store import executions as ex_sql
from agentd.supervisor import SupervisorClient, SupervisorUnavailable
from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from shared.errors import SquError, UnknownJob
from shared.models import Execution, JobRecord

__all__ = ["Agent", "AgentFailed", "db_path", "execution_dict", "history_filters", "job_dict"]

log = logging.getLogger("agentd")

STOP_GRACE_S = 5.0
UPKEEP_EVERY_S = 60.0
LISTEN_RETRY_S = 30.0
# Retention scans every run dir: often enough to keep the disk in check, rarely enough
# to cost nothing on an agent that keeps months of per-minute runs.
RETENTION_EVERY_S = 900.0


class AgentFailed(SquError):
    """The agent stopped because something it depends on went away; restart it."""

    code = "agent_failed"


class Agent:
    """One agent: its store, supervisor link, scheduler, executor and control socket."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.server = config.name or socket.gethostname()
        self.started_at = time.time()
        self.jobs: dict[str, JobRecord] = {}
        self.job_errors: list[dict[str, str]] = []
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._stopping = False
        self.failure: SquError | None = None
        self.store: Any = None
        self.supervisor: SupervisorClient | None = None
        self.executor: Executor | None = None
        self.scheduler: Scheduler | None = None
        self.control: control.ControlServer | None = None
        # Prometheus endpoint (agentd.metrics_http): `serve` sets the address; None is off.
        self.metrics_listen: tuple[str, int] | None = None
        self.metrics_server: Any = None
        self.ws_server: Any = None
        self.alerts: AlertDispatcher | None = None
        self.desk: ApprovalDesk | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop()`` (or SIGTERM); returns after a clean shutdown."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        try:
            await self._open()
            await self._serve()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._close()
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        """Ask the agent to stop; safe to call more than once."""
        if not self._stopping:
            log.info("stopping (running jobs stay with the supervisor)")
        self._stopping = True
        self._stop.set()

    async def _open(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await Store.open(self.config.store_path)
        self.supervisor = await SupervisorClient.connect_or_spawn(self.data_dir)
        log.info(
            "agent %s starting: data %s, pid %d, containment %s",
            self.server,
            self.data_dir,
            os.getpid(),
            getattr(self.supervisor, "containment", "?"),
        )
        self.executor = Executor(
            store=self.store,
            supervisor=self.supervisor,
            data_dir=self.data_dir,
            server=self.server,
            get_job=self.jobs.get,
            arm=lambda exec_id, due: self._scheduler().arm(exec_id, due),
            min_free_bytes=self.config.min_free_bytes,
            agent_tz=self.config.timezone,
            rng=random.SystemRandom(),
        )
        # Issue 8: the loops that react to changes sleep until told of one.
        self.executor.on_change = self._changed
        self.scheduler = Scheduler(
            store=self.store,
            executor=self.executor,
            jobs=lambda: self.jobs,
            default_tz=self.config.timezone,
        )
        # Issue 5: alerts are delivered from the store, with or without a console.
        self.alerts = AlertDispatcher(
            store=self.store,
            config=self.config.alerts,
            agent=self.server,
            data_dir=self.data_dir,
            jobs=lambda: self.jobs,
        )
        try:
            await self.reload()
        except Exception:
            # Serve the jobs the store already holds rather than nothing at all.
            log.exception("loading jobs.d failed; running the jobs stored before")
            self.jobs.update(await jobsync.load_table(self.store))
        summary = await reconcile.reconcile(self.store, self.supervisor, self.executor)
        log.info("reconciled unfinished executions: %s", summary or "none")
        fired = await self.scheduler.fire_reboot_jobs(self.started_at)
        if fired:
            log.info("fired %d @reboot job(s)", fired)
        self.control = control.ControlServer(control.socket_path(self.data_dir), self._handlers())
        await self.control.start()
        self.metrics_server = await start_agent_metrics(self, self.metrics_listen)

    async def _serve_wire(self) -> None:
        """Listen for consoles; a port in use is retried, never a reason to stop running jobs."""
        # DESIGN.md: consoles connect over the wire; wss:// with the agent's certificate,
        # plain ws:// only on loopback (start_server refuses anything else, loudly).
        from agentd import __version__
        from agentd.server.boot import start_server

        host, port = self.config.listen_host, self.config.listen_port
        while self.ws_server is None:
            try:
                self.ws_server = await start_server(
                    self.store,
                    data_dir=self.data_dir,
                    agent_name=self.server,
                    agent_version=__version__,
                    host=host,
                    port=port,
                    executor=self.executor,
                    containment=str(getattr(self.supervisor, "containment", "process-group")),
                    on_jobs_changed=self._jobs_changed_on_wire,
                )
                # Requests made or decided over the wire wake the sweep (their expiry).
                self.ws_server.ops.desk.on_change = self._changed
            except SquError as exc:
                # No certificate off loopback, unreadable key: config to fix, not to retry.
                log.error("not listening for consoles: %s (jobs keep running)", exc.message)
                return
            except OSError as exc:
                log.error(
                    "cannot listen on %s:%d (%s); retrying in %g s (jobs keep running)",
                    host,
                    port,
                    exc,
                    LISTEN_RETRY_S,
                )
                await asyncio.sleep(LISTEN_RETRY_S)

    def _changed(self) -> None:
        """An execution changed (executor) or a sweep decided requests: wake who reacts.

        Consoles hear of it at once (not at the next poll), the approvals sweep
        gives a new ``awaiting_approval`` row its request, and the alert
        dispatcher routes what the change raised.
        """
        if self.ws_server is not None:
            self.ws_server.notify()
        if self.desk is not None:
            self.desk.wake()
        if self.alerts is not None:
            self.alerts.wake()

    def listen_url(self) -> str:
        """Where consoles reach this agent ("" until listening): ``status`` reports it."""
        if self.ws_server is None:
            return ""
        scheme = "wss" if (self.data_dir / "tls" / "agent.crt").exists() else "ws"
        host = self.config.listen_host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.ws_server.port}"

    async def _jobs_changed_on_wire(self) -> None:
        # A job edited over the wire is already in the store: refresh the in-memory table.
        self.jobs.clear()
        self.jobs.update(await jobsync.load_table(self.store))
        self._scheduler().jobs_changed()

    async def _serve(self) -> None:
        scheduler, executor = self._scheduler(), self._executor()
        async with asyncio.TaskGroup() as tg:
            ticking = tg.create_task(scheduler.run(), name="scheduler")
            exits = tg.create_task(self._consume_exits(), name="exits")
            upkeep = tg.create_task(self._upkeep(), name="upkeep")
            reloads = tg.create_task(self._reload_on_signal(), name="reload")
            wire = tg.create_task(self._serve_wire(), name="wire")
            alerting = tg.create_task(self._deliver_alerts(), name="alerts")
            # docs/approvals.md: requests for scheduled runs that wait, and expiry -> skipped.
            desk = ApprovalDesk(self.store, agent_name=self.server, operators=tuple)
            desk.on_change = self._changed
            self.desk = desk
            approving = tg.create_task(desk.run(), name="approvals")
            log.info("agent ready: %d job(s)", len(self.jobs))
            await self._stop.wait()
            ticking.cancel()  # no new ticks while we stop
            reloads.cancel()
            await executor.drain(STOP_GRACE_S)
            if self.alerts is not None:
                # A message in flight is recorded as sent, not sent again after the restart.
                await self.alerts.drain(STOP_GRACE_S)
            for task in (exits, upkeep, wire, alerting, approving):
                task.cancel()
        # Exits and starts still in flight get the same grace, then are cut short.
        await executor.close(STOP_GRACE_S)

    async def _close(self) -> None:
        if self.metrics_server is not None:
            await self.metrics_server.close()
        if self.ws_server is not None:
            self.ws_server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws_server.wait_closed(), STOP_GRACE_S)
        if self.control is not None:
            await self.control.close()
        if self.supervisor is not None:
            with contextlib.suppress(Exception):
                await self.supervisor.close()
        if self.store is not None:
            await self.store.close()
        log.info("agent stopped")

    def _scheduler(self) -> Scheduler:
        assert self.scheduler is not None, "scheduler used before _open()"
        return self.scheduler

    def _executor(self) -> Executor:
        assert self.executor is not None, "executor used before _open()"
        return self.executor

    # -- loops ---------------------------------------------------------------------

    async def _consume_exits(self) -> None:
        try:
            await self._executor().consume_exits()
        except SupervisorUnavailable as exc:
            # Crash-only recovery: the service manager restarts us and the start-up
            # reconciliation settles every execution from the evidence on disk.
            log.error("lost the supervisor (%s); stopping so that a restart reconciles", exc)
            self.failure = AgentFailed(f"lost the supervisor: {exc.message}")
            self.stop()

    async def _deliver_alerts(self) -> None:
        if self.alerts is not None:
            await self.alerts.run()

    async def _reload_on_signal(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            try:
                await self.reload()
            except Exception:
                log.exception("reload failed; keeping the current jobs")

    async def _upkeep(self) -> None:
        last_retention = 0.0
        while True:
            await asyncio.sleep(UPKEEP_EVERY_S)
            try:
                await self._executor().retry_unacked()
                if time.monotonic() - last_retention >= RETENTION_EVERY_S:
                    last_retention = time.monotonic()
                    await self.retention()
            except Exception:
                log.exception("upkeep failed; carrying on")

    async def retention(self) -> None:
        """Remove history and run dirs older than the configured retention."""
        now = time.time()
        pruned = await self.store.call(
            ex_sql.prune, older_than=now - self.config.history_days * 86400
        )
        if pruned:
            log.info("history retention: removed %d execution(s)", pruned)
        await self.store.call(
            alert_sql.prune_alerts, older_than=now - self.config.history_days * 86400
        )
        removed = await asyncio.to_thread(joblogs.apply_retention, self.config)
        if removed:
            log.info("log retention: removed %d run dir(s)", len(removed))

    async def reload(self) -> dict[str, Any]:
        """Load ``jobs.d`` into the store and refresh the job table; returns what changed."""
        result = await jobsync.sync_jobs_dir(self.store, self.config, now=time.time())
        await self._audit(
            "config.reload",
            actor="agent",
            origin="jobs.d",
            target="jobs.d",
            detail={k: ",".join(v) for k, v in result.items() if k not in ("errors", "kept") and v},
        )
        self.job_errors = result["errors"]
        for err in self.job_errors:
            log.error("jobs.d: %s (its jobs keep their last good definition)", err["message"])
        self.jobs.clear()
        self.jobs.update(await jobsync.load_table(self.store))
        if self.scheduler is not None:
            self.scheduler.jobs_changed()
        log.info(
            "jobs loaded: %d (%s)",
            len(self.jobs),
            ", ".join(f"{k}: {', '.join(v) or '-'}" for k, v in result.items() if k != "errors"),
        )
        return result

    # -- control API ---------------------------------------------------------------

    def _handlers(self) -> dict[str, control.Handler]:
        return {
            "status": self._h_status,
            "jobs": self._h_jobs,
            "run": self._h_run,
            "cancel": self._h_cancel,
            "reload": self._h_reload,
            "history": self._h_history,
        }

    async def _h_status(self, params: dict[str, Any]) -> dict[str, Any]:
        executor = self._executor()
        running = sum(len(ids) for ids in executor.active.values())
        return {
            "agent": self.server,
            "pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3),
            "epoch": getattr(self.store, "epoch", ""),
            "jobs": len(self.jobs),
            "active_executions": running,
            "containment": str(getattr(self.supervisor, "containment", "")),
            "supervisor_pid": getattr(self.supervisor, "supervisor_pid", 0),
            "job_errors": self.job_errors,
            "refusing_new_work": executor.refusing_reason,
            "listen": self.listen_url(),
        }

    async def _h_jobs(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        scheduler = self._scheduler()
        return [job_dict(rec, scheduler.next_due(name)) for name, rec in sorted(self.jobs.items())]

    async def _h_run(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("job")
        if not isinstance(name, str):
            raise control.BadRequest("run: 'job' must be a job name")
        record = self.jobs.get(name)
        if record is None:
            raise UnknownJob(name, self.server)
        overrides = params.get("params") or {}
        if not isinstance(overrides, dict):
            raise control.BadRequest("run: 'params' must be an object of name -> value")
        executor = self._executor()
        ex = await executor.create(
            record,
            trigger=Trigger.MANUAL,
            params=overrides,
            triggered_by=str(params.get("by") or "local"),
        )
        assert ex is not None  # manual ids are fresh, never a duplicate
        by = str(params.get("by") or "local")
        await self._audit("run", actor=by, origin="control", target=ex.id, detail={"job": name})
        waiting = asyncio.ensure_future(executor.wait_run(ex)) if params.get("wait") else None
        started = await executor.start(ex)
        if waiting is None:
            return {"execution": execution_dict(started)}
        final = await waiting
        return {"execution": execution_dict(final), "exit_code": exit_code_of(final)}

    async def _h_cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        exec_id = params.get("execution")
        if not isinstance(exec_id, str):
            raise control.BadRequest("cancel: 'execution' must be an execution id")
        ex = await self._executor().cancel(exec_id)
        await self._audit("cancel", actor="local", origin="control", target=exec_id)
        return {"execution": execution_dict(ex)}

    async def _audit(
        self, action: str, *, actor: str, origin: str, target: str, detail: Any = None
    ) -> None:
        """Append to the audit log (docs/audit.md) a change this agent accepted."""
        await self.store.call(
            audit.append,
            at=time.time(),
            actor=actor,
            origin=origin,
            action=action,
            target=target,
            detail=detail,
        )

    async def _h_reload(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.reload()

    async def _h_history(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        rows = await self.store.call(ex_sql.query_executions, **history_filters(params))
        return [execution_dict(r) for r in rows]


def history_filters(params: dict[str, Any]) -> dict[str, Any]:
    """Control/CLI history params -> ``query_executions`` keyword arguments (validated)."""
    out: dict[str, Any] = {}
    if params.get("job"):
        out["job"] = str(params["job"])
    if params.get("status"):
        try:
            out["status"] = S(str(params["status"]))
        except ValueError:
            known = ", ".join(s.value for s in S)
            raise control.BadRequest(
                f"status: unknown value {params['status']!r} (one of: {known})"
            ) from None
    try:
        if params.get("since") is not None:
            out["since"] = float(params["since"])
        out["limit"] = int(params.get("limit") or 100)
    except (TypeError, ValueError):
        raise control.BadRequest(
            f"since must be epoch seconds and limit a whole number "
            f"(got since={params.get('since')!r}, limit={params.get('limit')!r})"
        ) from None
    return out


def execution_dict(ex: Execution) -> dict[str, Any]:
    """An execution as JSON for the control API and ``--json`` output."""
    import msgspec

    return msgspec.to_builtins(ex)  # type: ignore[no-any-return]


def job_dict(record: JobRecord, next_due: float | None) -> dict[str, Any]:
    job = record.job
    if job.cron is not None:
        schedule = job.cron
    elif job.at is not None:
        schedule = f"at {job.at}"
    else:
        schedule = "manual"
    return {
        "name": job.name,
        "schedule": schedule,
        "timezone": job.timezone,
        "enabled": job.enabled,
        "source": record.source,
        "version": record.version,
        "concurrency": str(job.concurrency),
        "misfire": str(job.misfire),
        "retry_count": job.retry.count,
        "timeout_s": job.timeout_s,
        "next_run": next_due,
        "reboot": is_reboot(job.cron),
        "approval": str(job.approval),
        "description": job.description,
        "definition_hash": record.definition_hash,
    }


def db_path(data_dir: Path) -> Path:
    """The store of the agent whose data dir is ``data_dir`` (for CLI readers)."""
    return Path(data_dir) / STORE_FILE
