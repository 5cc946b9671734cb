"""Content-addressed scripts on the agent's disk: ``DATA/scripts/``.

``objects/<sha256>`` holds each script's bytes (0600, written atomically, never
changed: the name is the hash), and ``index/<name>.jsonl`` lists the versions
of a name, newest last. A job says ``script = "name@sha256:<hex>"``; the
executor finds the bytes with ``ScriptStore.content_path(ref)``. Putting the
same content under the same name again changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import msgspec

from agentd.fsutil import write_atomic
from shared.errors import NotFound, SquError
from shared.protocol import Script, ScriptInfo

__all__ = ["InvalidScript", "ScriptStore", "UnknownScript"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]{0,62})(?:@sha256:(?P<hex>[0-9a-f]{64}))?$")


class UnknownScript(NotFound):
    code = "unknown_script"

    def __init__(self, ref: str) -> None:
        super().__init__(f"no script {ref!r} on this agent", script=ref)


class InvalidScript(SquError):
    code = "invalid_params"

    def __init__(self, why: str) -> None:
        super().__init__(why)


class ScriptStore:
    """Scripts under ``root`` (``DATA/scripts``). Sync: call through ``asyncio.to_thread``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put(self, name: str, content: str, interpreter: str, by: str, now: float) -> ScriptInfo:
        if not _NAME.match(name):
            raise InvalidScript(
                f"script name {name!r} must be lowercase letters, digits, '.', '_' or '-' "
                "(at most 63), starting with a letter or digit"
            )
        if not interpreter.startswith("/"):
            raise InvalidScript(f"interpreter {interpreter!r} must be an absolute path")
        data = content.encode()
        digest = hashlib.sha256(data).hexdigest()
        for info in self._versions(name):
            if info.sha256 == digest and info.interpreter == interpreter:
                return info
        objects = self.root / "objects"
        objects.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = objects / digest
        if not target.exists():
            write_atomic(target, data)
        info = ScriptInfo(
            name=name,
            sha256=digest,
            ref=f"{name}@sha256:{digest}",
            size=len(data),
            interpreter=interpreter,
            created_at=now,
            created_by=by,
        )
        index = self.root / "index"
        index.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(index / f"{name}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, msgspec.json.encode(info) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return info

    def list_all(self) -> list[ScriptInfo]:
        index = self.root / "index"
        if not index.is_dir():
            return []
        found: list[ScriptInfo] = []
        for path in sorted(index.glob("*.jsonl")):
            found += self._versions(path.stem)
        return found

    def get(self, ref: str) -> Script:
        info = self.resolve(ref)
        try:
            content = (self.root / "objects" / info.sha256).read_bytes()
        except FileNotFoundError:
            raise UnknownScript(ref) from None
        return Script(info=info, content=content.decode("utf-8", "replace"))

    def resolve(self, ref: str) -> ScriptInfo:
        """The version ``ref`` names ("name@sha256:<hex>", or "name" for the newest)."""
        match = _REF.match(ref)
        if match is None:
            raise UnknownScript(ref)
        versions = self._versions(match["name"])
        if match["hex"] is None:
            if not versions:
                raise UnknownScript(ref)
            return versions[-1]
        for info in versions:
            if info.sha256 == match["hex"]:
                return info
        raise UnknownScript(ref)

    def content_path(self, ref: str) -> Path:
        """Where the executor finds the bytes of ``ref``."""
        return self.root / "objects" / self.resolve(ref).sha256

    def _versions(self, name: str) -> list[ScriptInfo]:
        path = self.root / "index" / f"{name}.jsonl"
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        decoder = msgspec.json.Decoder(ScriptInfo)
        return [decoder.decode(line) for line in lines if line.strip()]
