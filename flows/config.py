"""Configuration from the environment (and the channel file), built once per command.

| variable | default | meaning |
| --- | --- | --- |
| ``RECON_HOME`` | ``./var`` | where the embedded database, inbox, archive, quarantine and reports live |
| ``RECON_DATABASE_URL`` | ``sqlite:///$RECON_HOME/recon.db`` | SQLAlchemy URL, e.g.
  ``postgresql+psycopg://postgres@127.0.0.1:5432/recon`` |
| ``RECON_INBOX`` | ``$RECON_HOME/inbox`` | channel files, one folder per business date (``YYYY-MM-DD``) |
| ``RECON_ARCHIVE`` / ``RECON_QUARANTINE`` / ``RECON_REPORTS`` | under ``$RECON_HOME`` | where files and workbooks go |
| ``RECON_CHANNELS_FILE`` | packaged ``reconcile/channels.toml`` | channels and layouts |
| ``RECON_ALLOCATION_ORDER`` | ``penalty,fee,interest,principal`` | the order a payment pays an installment's parts |
| ``RECON_LANGUAGE`` | ``zh`` | workbook language (``zh`` or ``en``) |
| ``RECON_LOG_LEVEL`` | ``WARNING`` | how much of a run's log the ``recon`` command writes to stderr |
| ``RECON_MAX_MEMBER_MB`` | ``512`` | the most a zipped member may inflate to, in MB (a larger one refuses its zip) |
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconcile.settings import DEFAULT_ALLOCATION_ORDER, Settings, settings_from_mapping

PACKAGED_CHANNELS = Path(__file__).resolve().parent.parent / "reconcile" / "channels.toml"


@dataclass(frozen=True)
class Paths:
    """Where things live on disk."""

    home: Path
    inbox: Path
    archive: Path
    quarantine: Path
    reports: Path


@dataclass(frozen=True)
class AppConfig:
    database_url: str
    paths: Paths
    settings: Settings


def load_channel_config(path: Path | None = None) -> dict[str, Any]:
    source = path or Path(os.environ.get("RECON_CHANNELS_FILE", PACKAGED_CHANNELS))
    with open(source, "rb") as handle:
        return tomllib.load(handle)


def load_config(env: dict[str, str] | None = None) -> AppConfig:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("RECON_HOME", "var")).resolve()
    paths = Paths(
        home=home,
        inbox=Path(env.get("RECON_INBOX", home / "inbox")),
        archive=Path(env.get("RECON_ARCHIVE", home / "archive")),
        quarantine=Path(env.get("RECON_QUARANTINE", home / "quarantine")),
        reports=Path(env.get("RECON_REPORTS", home / "reports")),
    )
    url = env.get("RECON_DATABASE_URL") or f"sqlite:///{home / 'recon.db'}"
    order = tuple(
        part.strip() for part in env.get("RECON_ALLOCATION_ORDER", ",".join(DEFAULT_ALLOCATION_ORDER)).split(",")
    )
    channels_file = env.get("RECON_CHANNELS_FILE")
    settings = settings_from_mapping(
        load_channel_config(Path(channels_file) if channels_file else PACKAGED_CHANNELS),
        allocation_order=order,
        language=env.get("RECON_LANGUAGE", "zh"),
        max_member_bytes=_megabytes(env.get("RECON_MAX_MEMBER_MB", "512"), "RECON_MAX_MEMBER_MB") << 20,
    )
    return AppConfig(database_url=url, paths=paths, settings=settings)


class ConfigError(ValueError):
    """A setting's value cannot be used; the message names the variable and what it should be."""


def _megabytes(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{name} must be a whole number of megabytes above 0, not {text!r}")
    return value
