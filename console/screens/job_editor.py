"""The job editor: a form for every Job field, validated as you type.

Each change rebuilds the job mapping from the form and runs it through
``shared.jobs.parse_job`` (the one door for job data), so the editor accepts
exactly what an agent accepts; the first error names its field and that field
is marked. The cron field shows its description and next fire times live.
``ctrl+s`` pushes the job to the agents ticked under "save to" and lists the
result per agent. A job declared in a ``jobs.d`` file opens read-only and
says which file to edit (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, Select, SelectionList, Static, Switch, TextArea

from console.bindings import bindings
from console.schedule import preview
from console.screens.base import SquScreen
from shared.enums import Approval, Backoff, Concurrency, Misfire
from shared.errors import InvalidJob, SquError
from shared.jobs import parse_job
from shared.models import Job, JobRecord, Parameter

__all__ = ["JobEditorScreen", "form_mapping"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # dotted path in the job mapping ("retry.count")
    kind: str  # text | number | int | list | select | switch | lines | params
    hint: str = ""
    choices: tuple[str, ...] = ()

    @property
    def widget_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


FIELDS: tuple[Field, ...] = (
    Field("name", "text", "slug: letters, digits, . _ -"),
    Field("description", "text"),
    Field("command", "text", "run by the interpreter; or give a script"),
    Field("script", "text", "name@sha256:<hex>"),
    Field("interpreter", "text", "/bin/sh"),
    Field("targets", "list", "servers or label selectors, comma separated"),
    Field("cron", "text", "5/6 fields or @daily; empty with no 'at': manual only"),
    Field("at", "text", "one-shot ISO time, e.g. 2027-01-20T02:30"),
    Field("timezone", "text", "IANA zone; empty: the agent's"),
    Field("timeout_s", "number", "seconds; empty: none"),
    Field("kill_grace_s", "number", "10"),
    Field("retry.count", "int", "0"),
    Field("retry.delay_s", "number", "10"),
    Field("retry.backoff", "select", choices=tuple(b.value for b in Backoff)),
    Field("retry.max_delay_s", "number", "3600"),
    Field("retry.jitter", "number", "0.1"),
    Field("retry.on", "list", "failed,timeout"),
    Field("concurrency", "select", choices=tuple(c.value for c in Concurrency)),
    Field("misfire", "select", choices=tuple(m.value for m in Misfire)),
    Field("misfire_grace_s", "number", "3600"),
    Field("enabled", "switch"),
    Field("approval", "select", choices=tuple(a.value for a in Approval)),
    Field("env", "lines", "NAME=value, one per line"),
    Field("parameters", "params", "name:type=default, one per line (type: str int float bool)"),
    Field("user", "text", "run as; empty: root"),
    Field("group", "text"),
    Field("working_dir", "text", "absolute path"),
    Field("max_log_bytes", "int", "10485760"),
    Field("labels", "list", "key=value, comma separated"),
    Field("idempotent", "switch"),
)

VALIDATE_DELAY_S = 0.15

_FIELD_BY_NAME = {f.name: f for f in FIELDS}
_DEFAULT = Job(name="x")


def _number(text: str, kind: str) -> Any:
    """A number when it reads as one; the text otherwise, so parse_job names the field."""
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return text


def _parameter(line: str) -> dict[str, Any]:
    """``name:type=default`` -> a parameter mapping; the default typed as the type says."""
    head, _, default = line.partition("=")
    name, _, kind = head.partition(":")
    kind = kind.strip() or "str"
    out: dict[str, Any] = {"name": name.strip(), "type": kind}
    text = default.strip()
    if text:
        typed: Any = text
        if kind == "bool" and text.lower() in ("true", "false"):
            typed = text.lower() == "true"
        elif kind in ("int", "float"):
            typed = _number(text, kind)
        out["default"] = typed
    return out


def form_mapping(values: dict[str, Any]) -> dict[str, Any]:
    """The job mapping for ``parse_job`` from raw form values (empty fields are omitted)."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        spec = _FIELD_BY_NAME[name]
        if spec.kind == "switch":
            value: Any = bool(raw)
        elif spec.kind == "select":
            if raw is None or raw == Select.NULL:
                continue
            value = raw
        else:
            text = str(raw).strip()
            if not text:
                continue
            if spec.kind in ("number", "int"):
                value = _number(text, spec.kind)
            elif spec.kind == "list" and name == "labels":
                pairs = [p.partition("=") for p in text.split(",") if p.strip()]
                value = {k.strip(): v.strip() for k, _, v in pairs}
            elif spec.kind == "list":
                value = [p.strip() for p in text.split(",") if p.strip()]
            elif spec.kind == "lines":
                pairs = [ln.partition("=") for ln in text.splitlines() if ln.strip()]
                value = {k.strip(): v for k, _, v in pairs}
            elif spec.kind == "params":
                value = [_parameter(ln) for ln in text.splitlines() if ln.strip()]
            else:
                value = str(raw)
        head, _, tail = name.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[name] = value
    return out


def _form_values(job: Job) -> dict[str, Any]:
    """The form's raw values for an existing job."""
    values: dict[str, Any] = {}
    for spec in FIELDS:
        head, _, tail = spec.name.partition(".")
        value = getattr(getattr(job, head), tail) if tail else getattr(job, head)
        if spec.kind in ("switch", "select"):
            values[spec.name] = value
        elif value is None:
            values[spec.name] = ""
        elif spec.name == "labels":
            values[spec.name] = ", ".join(f"{k}={v}" for k, v in value.items())
        elif spec.kind == "list":
            values[spec.name] = ", ".join(str(v) for v in value)
        elif spec.kind == "lines":
            values[spec.name] = "\n".join(f"{k}={v}" for k, v in value.items())
        elif spec.kind == "params":
            values[spec.name] = "\n".join(_param_line(p) for p in value)
        else:
            values[spec.name] = str(value)
    return values


def _param_line(p: Parameter) -> str:
    if p.default is None:
        default = ""
    elif isinstance(p.default, bool):
        default = "=true" if p.default else "=false"
    else:
        default = f"={p.default}"
    return f"{p.name}:{p.type}{default}"


def _widget_for_error(field: str) -> str:
    """``retry.count`` -> its widget; ``targets[2]`` / ``env.LD_PRELOAD`` -> the whole field."""
    base = re.sub(r"\[\d+\].*$", "", field)
    if base in _FIELD_BY_NAME:
        return _FIELD_BY_NAME[base].widget_id
    head = base.split(".", 1)[0]
    spec = _FIELD_BY_NAME.get(head)
    return spec.widget_id if spec else ""


class JobEditorScreen(SquScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings("editor.save", "view.back")

    def __init__(self, name: str | None) -> None:
        super().__init__()
        self.job_name = name
        self.job: Job | None = None
        self.error: InvalidJob | None = None
        self.records: dict[str, JobRecord] = {}
        self.read_only_source = ""
        self._pending: Timer | None = None

    def breadcrumbs(self) -> list[str]:
        return ["jobs", self.job_name or "new", "edit"]

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        mirror = self.squ.mirror
        if self.job_name:
            for stored in mirror.jobs(name=self.job_name):
                self.records[stored.agent] = stored.record
        files = {a: r.source for a, r in self.records.items() if r.source.startswith("file:")}
        if files:
            agent, source = sorted(files.items())[0]
            self.read_only_source = f"{source.removeprefix('file:')} on {agent}"
        first = next(iter(self.records.values()), None)
        values = _form_values(first.job if first else _DEFAULT)
        if first is None:
            values["name"] = ""
        with VerticalScroll(id="editor"):
            if self.read_only_source:
                yield Static(
                    Text(
                        f"read-only: defined in {self.read_only_source}; edit that file",
                        style="bold yellow",
                    ),
                    id="editor-readonly",
                )
            for spec in FIELDS:
                with Horizontal(classes="editor-row"):
                    yield Label(spec.name, classes="editor-label", markup=False)
                    yield self._field_widget(spec, values.get(spec.name))
                if spec.name == "cron":
                    yield Static(id="cron-preview", classes="editor-hint", markup=False)
            agents = sorted(a.name for a in self.squ.agents())
            chosen = set(self.records) or set()
            yield Label("save to", classes="editor-label", markup=False)
            yield SelectionList[str](
                *[(Text(a), a, a in chosen) for a in agents],
                id="save-to",
                disabled=bool(self.read_only_source),
            )
            yield Static(id="save-results", markup=False)
        yield Static(id="editor-error", markup=False)
        yield from self.compose_footer()

    def _field_widget(self, spec: Field, value: Any) -> Widget:
        disabled = bool(self.read_only_source)
        wid = spec.widget_id
        if spec.kind == "switch":
            return Switch(bool(value), id=wid, disabled=disabled)
        if spec.kind == "select":
            options = [(c, c) for c in spec.choices]
            return Select(
                options,
                value=str(value),
                id=wid,
                allow_blank=False,
                disabled=disabled,
                compact=True,
            )
        if spec.kind in ("lines", "params"):
            area = TextArea(
                str(value or ""), id=wid, disabled=disabled, soft_wrap=False, compact=True
            )
            area.show_line_numbers = False
            return area
        return Input(
            str(value or ""), placeholder=spec.hint, id=wid, disabled=disabled, compact=True
        )

    def on_mount(self) -> None:
        super().on_mount()
        self.validate()
        if not self.read_only_source:
            self.query_one("#f-name" if not self.job_name else "#f-command").focus()

    # -- live validation ----------------------------------------------------------

    def raw_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for spec in FIELDS:
            widget = self.query_one(f"#{spec.widget_id}")
            if isinstance(widget, TextArea):
                values[spec.name] = widget.text
            else:
                values[spec.name] = getattr(widget, "value", "")
        return values

    def validate(self) -> Job | None:
        """Check the form as it stands; show the error (naming the field) or the cron preview."""
        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")
        mapping = form_mapping(self.raw_values())
        try:
            job = parse_job(mapping, where="editor")
        except InvalidJob as exc:
            self.job, self.error = None, exc
            wid = _widget_for_error(exc.field)
            if wid:
                self.query_one(f"#{wid}").add_class("-invalid")
            self.query_one("#editor-error", Static).update(
                Text(f"{exc.field}: {exc.why}", style="bold red"), layout=False
            )
        except SquError as exc:
            self.job, self.error = None, InvalidJob("job", exc.message)
            self.query_one("#editor-error", Static).update(
                Text(exc.message, style="bold red"), layout=False
            )
        else:
            self.job, self.error = job, None
            self.query_one("#editor-error", Static).update(
                Text("valid", style="green"), layout=False
            )
        self._show_cron_preview(mapping)
        return self.job

    def _show_cron_preview(self, mapping: dict[str, Any]) -> None:
        expr = mapping.get("cron")
        hint = self.query_one("#cron-preview", Static)
        if not isinstance(expr, str):
            hint.update(
                Text("manual only" if not mapping.get("at") else "", style="dim"), layout=False
            )
            return
        zone = mapping.get("timezone") if isinstance(mapping.get("timezone"), str) else None
        shown = preview(Job(name="x", cron=expr, timezone=zone), now=self.squ.now(), n=3)
        if shown.error:
            hint.update(Text(shown.error, style="red"), layout=False)
            return
        times = ", ".join(f"{t:%a %m-%d %H:%M}" for t in shown.times)
        utc = shown.times[0].astimezone(UTC).strftime("%H:%M UTC") if shown.times else ""
        hint.update(
            Text(f"{shown.words} · next {times} {shown.zone.key} ({utc})", style="dim"),
            layout=False,
        )

    # Typing fires a change per key; validation waits for a short pause so a
    # burst of keys (or the form filling itself at mount) costs one check.
    def _changed(self) -> None:
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(VALIDATE_DELAY_S, self.validate)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._changed()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._changed()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self._changed()

    # -- saving -------------------------------------------------------------------------

    def action_save(self) -> None:
        if self.read_only_source:
            self.notify(f"defined in {self.read_only_source}: edit that file", severity="warning")
            return
        job = self.validate()
        if job is None:
            self.notify(self.error.message if self.error else "invalid", severity="error")
            return
        agents = list(self.query_one("#save-to", SelectionList).selected)
        if not agents:
            self.notify("tick at least one agent under 'save to'", severity="warning")
            return
        self.save(job, agents)

    @work(exclusive=True, group="editor-save", exit_on_error=False)
    async def save(self, job: Job, agents: list[str]) -> None:
        """Push ``job`` to each agent; list the outcome per agent under the form."""
        results = Text()
        box = self.query_one("#save-results", Static)
        for agent in agents:
            previous = self.records.get(agent)
            expected = previous.version if previous and previous.job.name == job.name else None
            timeout_s = self.squ.config.action_timeout_s
            try:
                put = self.squ.fleet.put_job(agent, job, expected)
                record = await asyncio.wait_for(put, timeout=timeout_s)
            except SquError as exc:
                results.append(f"{agent}: not saved: {exc.message}\n", style="red")
            except TimeoutError:
                results.append(f"{agent}: not saved: no answer after {timeout_s:.0f}s\n", "red")
            else:
                self.records[agent] = record
                results.append(f"{agent}: saved, version {record.version}\n", style="green")
            box.update(results)
