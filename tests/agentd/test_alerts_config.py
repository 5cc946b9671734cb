"""[alerts] in agentd.toml: the documented example loads; bad values name file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentd.alerts.config import CommandConfig, EmailConfig, WebhookConfig
from agentd.config import ConfigError, load_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def _load(tmp_path: Path, text: str) -> object:
    (tmp_path / "agentd.toml").write_text(text)
    return load_config(tmp_path).alerts


def test_documented_example_loads(tmp_path: Path) -> None:
    """The agentd.toml example in docs/alerts.md is valid as written."""
    example = re.search(r"```toml\n(\[alerts\].*?)```", DOC.read_text(), re.S)
    assert example is not None
    alerts = _load(tmp_path, example.group(1))
    kinds = {name: type(c) for name, c in alerts.channel.items()}  # type: ignore[attr-defined]
    assert kinds == {"ops-hook": WebhookConfig, "pager": CommandConfig, "mail": EmailConfig}


def test_no_alerts_section_means_record_only(tmp_path: Path) -> None:
    """Without [alerts] nothing is sent (alerts are still recorded)."""
    alerts = _load(tmp_path, "[agent]\nname = 'db1'\n")
    assert alerts.channels == () and alerts.channel == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[alerts]\nchannels = ["hook"]\n',
            r"agentd.toml:2: alerts.channels: no \[alerts.channel.hook\]",
        ),
        (
            '[alerts.channel.hook]\ntype = "webhook"\nurl = "ftp://x"\n',
            r"agentd.toml:3: alerts.channel.hook.url: must be an http:// or https:// URL",
        ),
        (
            '[alerts.channel.hook]\ntype = "pigeon"\n',
            r"agentd.toml:1: .*a channel's type is webhook, command or email",
        ),
        (
            '[alerts.channel.page]\ntype = "command"\ncommand = ["page"]\n',
            r"alerts.channel.page.command: must be a list whose first item is an absolute path",
        ),
        ("[alerts]\nrate_limit_burst = 0\n", r"agentd.toml:2: alerts.rate_limit_burst: must be"),
        ("[alerts]\nsend_all = true\n", r"agentd.toml:2: alerts.send_all: unknown setting"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    """Each bad setting is refused with the file, line, key and what is valid."""
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)
