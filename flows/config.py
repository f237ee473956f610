"""Configuration: one settings model, read from environment variables and a settings file,
validated once at start (``pydantic-settings``); every bad value is named in one error.

Each setting is an environment variable ``RECON_<NAME>`` or a line ``RECON_<NAME>=value`` in the
settings file: ``$RECON_SETTINGS_FILE`` when set, else ``recon.env`` in the working directory when
there is one (a Prefect worker runs the flows in the project folder, so a deployment finds it
there). An environment variable wins over the file. A name in the file that is not a setting is an
error, not a silence.

| setting | default | meaning |
| --- | --- | --- |
| ``RECON_HOME`` | ``./var`` | where the embedded database, inbox, archive, quarantine and reports live |
| ``RECON_DATABASE_URL`` | ``sqlite:///$RECON_HOME/recon.db`` | SQLAlchemy URL, e.g.
  ``postgresql+psycopg://postgres@127.0.0.1:5432/recon`` |
| ``RECON_INBOX`` | ``$RECON_HOME/inbox`` | channel files, one folder per business date (``YYYY-MM-DD``) |
| ``RECON_ARCHIVE`` / ``RECON_QUARANTINE`` / ``RECON_REPORTS`` | under ``$RECON_HOME`` | where files and workbooks go |
|  |  | (each of the four a local folder or an fsspec URL such as ``s3://bucket/inbox``) |
| ``RECON_CHANNELS_FILE`` | packaged ``reconcile/channels.toml`` | channels and layouts |
| ``RECON_FUNDS_FILE`` | packaged ``reconcile/funds.toml`` | settlement cycles, fees, payers, statement layouts |
| ``RECON_FUNDS_FROM`` | none (off) | the first business date whose money is followed to the collection account
  (资金对账); unset, funds reconciliation is off |
| ``RECON_ALLOCATION_ORDER`` | ``penalty,fee,interest,principal`` | the order a payment pays an installment's parts |
| ``RECON_INSTRUCTION_LOOKBACK_DAYS`` | ``35`` | how long before the date an instruction may have been
  sent and still be answered |
| ``RECON_FALLBACK_WINDOW_DAYS`` | ``3`` | how long before settlement the fallback pass looks for an instruction |
| ``RECON_AMOUNT_TOLERANCE_FEN`` | ``0`` | how far the fallback pass lets amounts differ, in fen |
| ``RECON_FALLBACK_THRESHOLD`` | ``60`` | the score (0–100) a fallback candidate needs |
| ``RECON_AMBIGUITY_MARGIN`` | ``10`` | candidates within this of the best make a match ambiguous |
| ``RECON_CUTOFF`` | ``09:00`` | Shanghai time after which a missing file or result is an exception |
| ``RECON_NIGHTLY_AT`` | ``09:30`` | Shanghai time the nightly deployment runs (``recon deploy``) |
| ``RECON_WORK_POOL`` | ``recon`` | the Prefect work pool the deployments run on (``recon deploy``) |
| ``RECON_TASK_RUNNER`` | ``threads`` | where a flow's mapped tasks run: ``threads``, or ``dask`` (``prefect-dask``) |
| ``RECON_DASK_ADDRESS`` | none | a Dask scheduler to use (``tcp://host:8786``); none: a local cluster per flow run |
| ``RECON_LANGUAGE`` | ``zh`` | workbook language (``zh`` or ``en``) |
| ``RECON_LOG_LEVEL`` | ``WARNING`` | how much of a run's log the ``recon`` command writes to stderr |
| ``RECON_MAX_MEMBER_MB`` | ``512`` | the most a zipped member may inflate to, in MB (a larger one refuses its zip) |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.storage import Remote, mirror
from reconcile.funds.rules import FundsConfigError, FundsRules, parse_funds_config
from reconcile.layouts import LayoutError
from reconcile.settings import DEFAULT_ALLOCATION_ORDER, Settings, settings_from_mapping

PACKAGED_CHANNELS = Path(__file__).resolve().parent.parent / "reconcile" / "channels.toml"
PACKAGED_FUNDS = PACKAGED_CHANNELS.with_name("funds.toml")
SETTINGS_FILE = "recon.env"
PREFIX = "RECON_"


class ConfigError(ValueError):
    """A setting's value cannot be used; the message names each variable and what it should be."""


class ReconSettings(BaseSettings):
    """Every knob of the product (see the module docstring for each)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", case_sensitive=False)

    home: Path = Path("var")
    database_url: str | None = None
    # a local folder or an fsspec URL (``s3://bucket/inbox``: flows/storage.py)
    inbox: str | None = None
    archive: str | None = None
    quarantine: str | None = None
    reports: str | None = None
    channels_file: Path | None = None
    funds_file: Path | None = None
    funds_from: dt.date | None = None
    allocation_order: str = ",".join(DEFAULT_ALLOCATION_ORDER)
    instruction_lookback_days: int = Field(35, ge=1, le=366)
    fallback_window_days: int = Field(3, ge=0, le=60)
    amount_tolerance_fen: int = Field(0, ge=0)
    fallback_threshold: int = Field(60, ge=0, le=100)
    ambiguity_margin: int = Field(10, ge=0, le=100)
    cutoff: dt.time = dt.time(9, 0)
    nightly_at: dt.time = dt.time(9, 30)
    work_pool: str = Field("recon", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None
    language: Literal["zh", "en"] = "zh"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"
    max_member_mb: int = Field(512, gt=0)

    @field_validator("allocation_order")
    @classmethod
    def _each_part_once(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if sorted(parts) != sorted(DEFAULT_ALLOCATION_ORDER):
            raise ValueError(f"must name each of {', '.join(DEFAULT_ALLOCATION_ORDER)} once, comma-separated")
        return ",".join(parts)

    @field_validator("task_runner", mode="before")
    @classmethod
    def _runner_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("language", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a database URL such as sqlite:///recon.db or postgresql+psycopg://host/db")
        return value or None


def settings_file(env: Mapping[str, str]) -> Path | None:
    """The settings file that applies: ``$RECON_SETTINGS_FILE``, else ``recon.env`` here if any."""
    named = env.get(f"{PREFIX}SETTINGS_FILE")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{PREFIX}SETTINGS_FILE: no such file {named!r}")
        return path
    here = Path(SETTINGS_FILE)
    return here if here.is_file() else None


def read_settings(env: Mapping[str, str] | None = None) -> ReconSettings:
    """The settings from ``env`` (default: the process environment) over the settings file;
    raises :class:`ConfigError` naming every bad value."""
    env = os.environ if env is None else env
    source = settings_file(env)
    fields = ReconSettings.model_fields
    given: dict[str, Any] = {
        name: env[f"{PREFIX}{name.upper()}"] for name in fields if f"{PREFIX}{name.upper()}" in env
    }
    try:
        # the environment is passed in (a test's or the process's); the file is read by pydantic-settings
        return ReconSettings(_env_file=source, **given)  # type: ignore[call-arg]
    except ValidationError as error:
        raise ConfigError(_problems(error, source, given)) from None


def _problems(error: ValidationError, source: Path | None, given: Mapping[str, Any]) -> str:
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        shown = given.get(name, problem.get("input"))  # as typed, before any normalising
        if problem["type"] == "extra_forbidden":
            lines.append(f"{name.upper()}: not a setting (in {source}); see the README for the settings")
            continue
        message = str(problem["msg"]).removeprefix("Value error, ").replace("Input should", "should")
        lines.append(f"{PREFIX}{name.upper()}: {message} (got {shown!r})")
    return "; ".join(lines)


FOLDERS = ("inbox", "archive", "quarantine", "reports")


@dataclass(frozen=True)
class Paths:
    """Where things live on disk; ``remotes``: the folders kept on object storage, by name (the
    path here is then their local mirror)."""

    home: Path
    inbox: Path
    archive: Path
    quarantine: Path
    reports: Path
    remotes: dict[str, Remote] = field(default_factory=dict)


@dataclass(frozen=True)
class AppConfig:
    database_url: str
    paths: Paths
    settings: Settings
    options: ReconSettings | None = None


def load_channel_config(path: Path | None = None) -> dict[str, Any]:
    source = path or PACKAGED_CHANNELS
    try:
        with open(source, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{PREFIX}CHANNELS_FILE: cannot read {str(source)!r} ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{PREFIX}CHANNELS_FILE: {str(source)!r} is not valid TOML ({error})") from None


def load_funds_rules(path: Path | None, channels: tuple[str, ...]) -> FundsRules:
    """The funds rules (``RECON_FUNDS_FILE``, else the packaged ones), every problem named."""
    source = path or PACKAGED_FUNDS
    try:
        with open(source, "rb") as handle:
            config = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{PREFIX}FUNDS_FILE: cannot read {str(source)!r} ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{PREFIX}FUNDS_FILE: {str(source)!r} is not valid TOML ({error})") from None
    try:
        return parse_funds_config(config, channels)
    except FundsConfigError as error:
        said = "\n  ".join(error.problems)
        raise ConfigError(f"{PREFIX}FUNDS_FILE: {str(source)!r} is wrong:\n  {said}") from None


def load_config(env: Mapping[str, str] | None = None) -> AppConfig:
    """The whole configuration, validated once (raises :class:`ConfigError`)."""
    options = read_settings(env)
    home = options.home.resolve()
    folders = {name: mirror(home, name, getattr(options, name) or None, home / name) for name in FOLDERS}
    paths = Paths(
        home=home,
        inbox=folders["inbox"][0],
        archive=folders["archive"][0],
        quarantine=folders["quarantine"][0],
        reports=folders["reports"][0],
        remotes={name: remote for name, (_, remote) in folders.items() if remote is not None},
    )
    url = options.database_url or f"sqlite:///{home / 'recon.db'}"
    channels_file = options.channels_file or PACKAGED_CHANNELS
    try:
        settings = _settings(load_channel_config(options.channels_file), options)
    except LayoutError as error:  # every problem, each with its place in the file
        said = "\n  ".join(error.problems)
        raise ConfigError(f"{PREFIX}CHANNELS_FILE: {str(channels_file)!r} is wrong:\n  {said}") from None
    funds = load_funds_rules(options.funds_file, tuple(settings.channels))
    settings = dataclasses.replace(settings, funds=funds, funds_from=options.funds_from)
    return AppConfig(database_url=url, paths=paths, settings=settings, options=options)


def _settings(channel_config: dict[str, Any], options: ReconSettings) -> Settings:
    return settings_from_mapping(
        channel_config,
        allocation_order=tuple(options.allocation_order.split(",")),
        instruction_lookback_days=options.instruction_lookback_days,
        fallback_window_days=options.fallback_window_days,
        amount_tolerance_fen=options.amount_tolerance_fen,
        fallback_threshold=options.fallback_threshold,
        ambiguity_margin=options.ambiguity_margin,
        cutoff=options.cutoff,
        language=options.language,
        max_member_bytes=options.max_member_mb << 20,
    )
