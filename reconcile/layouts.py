"""Layouts as typed, frozen specs: what ``[layouts.*]`` in ``channels.toml`` may say, and nothing else.

A layout used to be read as a dictionary by key, so a misspelled key (``datetme``, ``fallbak``)
was ignored and the bank's file quietly misread. Here every table of a layout is a model that
refuses keys it does not know and values of the wrong type, and :func:`parse_layouts` reports
every problem at once, each with its place (``layouts.bank_pipe_v1.fields.status.mapp: not a
key of a map field``). The reader (:mod:`reconcile.ingest`) works on these specs only.

A field is one of four kinds, told apart by the key that makes it what it is: an **amount**
(``amount``, or ``income`` and ``expense``), a **datetime** (``datetime``), a **map** (``map``),
or a plain **column**. Constants are ``[layouts.*.constant]``: a canonical field and its text.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

#: The canonical fields a layout may fill (``schemas.frames.ChannelRecordFrame``), and ``currency``,
#: checked against the channel's and then dropped, ``split_part``: the part number of a payment
#: delivered as several split lines (分账), which are read as one payment, and ``fee_fen``: the fee
#: the channel states it charged on the line (a charge positive, a fee given back negative), and
#: ``settled_net_fen``: what it states it settles for the line, net of the fee (UnionPay's 清算净额),
#: each summed per file for funds reconciliation.
TARGETS = (
    "channel_txn_id",
    "reference",
    "record_kind",
    "status",
    "amount_fen",
    "settled_at",
    "account_shown",
    "memo",
    "failure_code",
    "failure_text",
    "refund_request_no",
    "currency",
    "split_part",
    "fee_fen",
    "settled_net_fen",
)
#: What a record kind may be read as (``skip``: neither a debit nor a refund, counted then set aside).
RECORD_KINDS = ("debit", "refund", "skip")
STATUSES = ("SUCCESS", "FAILED")
#: Which rows a control total counts.
APPLIES_TO = ("all", "success", "debit", "refund", "income", "expense")


class LayoutError(ValueError):
    """The channel configuration is wrong; ``problems`` says each thing wrong and where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the channel configuration is wrong:\n  " + "\n  ".join(problems))


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression ({error})") from None
    return value


def _as_tuple(value: Any) -> Any:
    """A TOML array arrives as a list; a spec keeps a tuple (frozen all the way down)."""
    return tuple(value) if isinstance(value, list) else value


def _time_format(value: str) -> str:
    if "%" not in value:
        raise ValueError("a time format needs strftime codes such as %Y%m%d")
    try:
        dt.datetime(2026, 11, 27, 9, 5, 7).strftime(value)
    except ValueError as error:
        raise ValueError(f"not a time format ({error})") from None
    return value


class _FieldBase(_Spec):
    """What every field may say: where its text is (``column``, else ``fallback`` when blank),
    ``only_for_kind`` (the field is kept on lines of that record kind only) and ``optional`` (the
    column may be absent from the header, as in another bill type of the same channel: the field
    is then blank; otherwise a header without it rejects the file)."""

    column: str | None = None
    fallback: str | None = None
    only_for_kind: Literal["debit", "refund"] | None = None
    optional: bool = False

    def columns(self) -> tuple[str, ...]:
        """The file's columns the field reads (the fallback too)."""
        return tuple(c for c in (self.column, self.fallback) if c is not None)

    @model_validator(mode="after")
    def _has_column(self) -> _FieldBase:
        if self.column is None and not isinstance(self, AmountField):
            raise ValueError("a field needs a column")
        return self


class ColumnField(_FieldBase):
    """The cell's text as it is."""

    kind: Literal["column"] = "column"


class SignFrom(_Spec):
    """Where an amount's sign is written apart from it."""

    column: str
    map: dict[str, Literal["+", "-"]]


class AmountField(_FieldBase):
    """An amount: ``yuan`` (``¥``, separators, ``元`` allowed) or ``fen`` (an integer).

    ``income`` and ``expense`` instead of ``column``: two columns, one signed amount.
    ``absolute``: the field is the amount's size (the kind says its direction). ``decimal = ","``:
    comma decimals. ``sign_letters``: a leading or trailing letter gives the sign (``D = "-"``).
    ``column_for_kind``: another column for lines of a record kind (WeChat Pay: a refund's amount
    is in 退款金额, a payment's in 应结订单金额). ``sign_from``: the sign is another column's text
    (WeChat's fund-flow bill: 收支类型 收入 / 支出), e.g. ``{ column = "收支类型", map = { "收入" = "+",
    "支出" = "-" } }``; text the map lacks makes the amount unreadable.
    """

    kind: Literal["amount"] = "amount"
    amount: Literal["yuan", "fen"] = "yuan"
    income: str | None = None
    expense: str | None = None
    absolute: bool = False
    decimal: Literal[","] | None = None
    sign_letters: dict[str, Literal["+", "-"]] | None = None
    column_for_kind: dict[Literal["debit", "refund"], str] | None = None
    sign_from: SignFrom | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AmountField:
        split = (self.income is not None, self.expense is not None)
        if split == (True, False) or split == (False, True):
            raise ValueError("income and expense come together")
        if (self.column is None) == (self.income is None):
            raise ValueError("an amount reads either a column or income and expense columns")
        return self

    def columns(self) -> tuple[str, ...]:
        if self.income is not None and self.expense is not None:
            return (self.income, self.expense)
        signed = (self.sign_from.column,) if self.sign_from is not None else ()
        return (*super().columns(), *(self.column_for_kind or {}).values(), *signed)


class DatetimeField(_FieldBase):
    """A Shanghai wall-clock time in ``datetime`` (strftime codes); ``year_from = "business_date"``
    when the text carries no year (a clearing file's ``MMDDhhmmss``)."""

    kind: Literal["datetime"] = "datetime"
    datetime: str
    year_from: Literal["business_date"] | None = None

    _format = field_validator("datetime")(_time_format)


class MapField(_FieldBase):
    """The cell's text looked up in ``map``; ``default`` for text (or a blank) the map lacks,
    otherwise such text makes the line invalid; ``blank``: what an empty cell means (WeChat's
    退款状态 is empty on a payment's line), when only a blank should take a value."""

    kind: Literal["map"] = "map"
    map: dict[str, str]
    default: str | None = None
    blank: str | None = None


def _field_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "amount" in value or "income" in value or "expense" in value:
            return "amount"
        if "datetime" in value:
            return "datetime"
        if "map" in value:
            return "map"
        return "column"
    return str(getattr(value, "kind", "column"))


FieldSpec = Annotated[
    Annotated[ColumnField, Tag("column")]
    | Annotated[AmountField, Tag("amount")]
    | Annotated[DatetimeField, Tag("datetime")]
    | Annotated[MapField, Tag("map")],
    Discriminator(_field_kind),
]


class BusinessDateSpec(_Spec):
    """Where the file states its business date: a regex with a ``date`` group over the preamble
    or the file name, or field ``field`` of the summary line; parsed by ``format``. ``required =
    false``: a file that does not say is filed under the date it came for."""

    source: Literal["preamble", "file_name", "summary"]
    format: str
    pattern: str | None = None
    field: int | None = Field(default=None, ge=0)
    required: bool = True

    _format = field_validator("format")(_time_format)
    _pattern = field_validator("pattern")(_regex)

    @model_validator(mode="after")
    def _where(self) -> BusinessDateSpec:
        if self.source == "summary" and self.field is None:
            raise ValueError("a date from the summary line needs its field number")
        if self.source != "summary" and self.pattern is None:
            raise ValueError(f"a date from the {self.source.replace('_', ' ')} needs a pattern")
        if self.pattern is not None and "(?P<date>" not in self.pattern:
            raise ValueError("the pattern needs a group named date: (?P<date>...)")
        return self


class MerchantSpec(_Spec):
    """Where a file names the merchant id it is of: a regex with a ``merchant`` group over the file
    name (UnionPay's ``…ZM_{merId}``, Alipay's ``{PID}_{date}_…``) or the preamble."""

    source: Literal["file_name", "preamble"]
    pattern: str

    _pattern = field_validator("pattern")(_regex)

    @field_validator("pattern")
    @classmethod
    def _group(cls, value: str) -> str:
        if "(?P<merchant>" not in value:
            raise ValueError("the pattern needs a group named merchant: (?P<merchant>...)")
        return value


class ControlTotalSpec(_Spec):
    """A count and an amount the file states, checked against the rows of ``applies_to``.

    ``source = "footer"``: a regex with ``count`` and ``amount`` groups over the footer lines.
    ``source = "summary"``: fields ``count_field`` and ``amount_field`` of the summary line.
    ``source = "summary_table"``: a trailing table (a header line holding ``count_column``, then
    one line of values; WeChat Pay's 总交易单数 block), its cells by name. ``sums``: the file's
    column the stated amount adds up (default: the line's amount); ``amount``: how the stated
    amount is written; ``required = false``: a total the file may lack (another bill type's
    summary table has fewer cells), checked where it is stated.
    ``source = "section"``: a summary section before the details (a processor's file: its own
    header line, found by ``section_contains``, then one row per total, cells by name). Each row
    is a total of the details whose ``per_column`` holds the row's value in that column and whose
    record kind is the row's ``per_kind`` text read through the layout's ``record_kind`` map (a
    total per terminal and transaction type); all rows together are checked against all details.
    """

    source: Literal["footer", "summary", "summary_table", "section"]
    applies_to: Literal["all", "success", "debit", "refund", "income", "expense"]
    pattern: str | None = None
    count_field: int | None = Field(default=None, ge=0)
    amount_field: int | None = Field(default=None, ge=0)
    count_column: str | None = None
    amount_column: str | None = None
    sums: str | None = None
    amount: Literal["yuan", "fen"] = "yuan"
    required: bool = True
    section_contains: tuple[str, ...] | None = None
    per_column: str | None = None
    per_kind: str | None = None

    _tuples = field_validator("section_contains", mode="before")(_as_tuple)
    _pattern = field_validator("pattern")(_regex)

    @model_validator(mode="after")
    def _where(self) -> ControlTotalSpec:
        needs = {
            "footer": ("pattern",),
            "summary": ("count_field", "amount_field"),
            "summary_table": ("amount_column",),
            "section": ("section_contains", "count_column", "amount_column"),
        }[self.source]
        missing = [key for key in needs if getattr(self, key) is None]
        if missing:
            raise ValueError(f"a {self.source} control total needs {' and '.join(missing)}")
        groups = set(re.findall(r"\(\?P<(\w+)>", self.pattern or ""))
        if self.pattern is not None and not {"count", "amount"} <= groups:
            raise ValueError("the pattern needs groups named count and amount")
        return self


class LayoutSpec(_Spec):
    """How one kind of file reads (the keys are listed in the README).

    Delimited: ``delimiter`` and either ``header_contains`` (the header found by these names) or
    ``columns`` (no header). Fixed width: ``columns`` and ``widths`` in bytes of ``encoding``, and
    ``gap`` spaces after each field (UnionPay's clearing files: one).
    ``format = "iso20022"``: an XML message, read by its own reader (no other key).
    ``value_prefix``: a mark every value carries (WeChat Pay's backtick), taken off each cell read.
    ``extends``: (in the file, resolved before this model) another layout whose keys this one
    takes unless it says otherwise. ``settlement_kinds``: lines set aside (``record_kind`` read as
    ``skip``) that are the channel's own word on its settlement, by the raw kind cell: ``fee`` (a
    charge, e.g. Alipay's 收费), ``payout`` (a withdrawal to the bank, 提现) or ``transfer`` (money
    moved out of the balance otherwise, 转账) — kept for funds reconciliation. ``merchant_from``:
    where the file names its merchant id (:class:`MerchantSpec`), for funds reconciliation's
    expectations per channel × merchant.
    """

    name: str
    format: Literal["text", "iso20022"] = "text"
    encoding: str = "utf-8"
    delimiter: str | None = None
    comment_prefix: str | None = None
    header_contains: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    widths: tuple[Annotated[int, Field(gt=0)], ...] | None = None
    gap: int = Field(default=0, ge=0)
    record_prefix: str | None = None
    summary_prefix: str | None = None
    summary_widths: tuple[Annotated[int, Field(gt=0)], ...] | None = None
    line_pattern: str | None = None
    end_marker: str | None = None
    value_prefix: str | None = Field(default=None, min_length=1)
    business_date: BusinessDateSpec | None = None
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    constant: dict[str, str] = Field(default_factory=dict)
    reason_codes: dict[str, str] = Field(default_factory=dict)
    control_totals: tuple[ControlTotalSpec, ...] = ()
    restates: str | None = None
    settlement_kinds: dict[str, Literal["fee", "payout", "transfer"]] = Field(default_factory=dict)
    merchant_from: MerchantSpec | None = None

    _patterns = field_validator("line_pattern", "end_marker")(_regex)

    _tuples = field_validator(
        "header_contains", "columns", "widths", "summary_widths", "control_totals", mode="before"
    )(_as_tuple)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @field_validator("fields", "constant", mode="before")
    @classmethod
    def _known_targets(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(TARGETS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a field of a record (one of {', '.join(TARGETS)})")
        return value

    @property
    def fixed_width(self) -> bool:
        return self.widths is not None

    @model_validator(mode="after")
    def _consistent(self) -> LayoutSpec:
        if self.format == "iso20022":
            said = sorted(k for k in self.model_fields_set if k not in ("name", "format"))
            if said:
                raise ValueError(f"an iso20022 layout takes no other keys ({', '.join(said)})")
            return self
        problems = []
        if self.fixed_width:
            assert self.widths is not None
            if self.columns is None or len(self.columns) != len(self.widths):
                problems.append("widths needs columns, one width per column")
            if self.delimiter is not None or self.header_contains is not None:
                problems.append("a fixed-width layout has no delimiter or header")
        else:
            if not self.delimiter:
                problems.append("a delimited layout needs a delimiter (or widths, for fixed width)")
            if (self.header_contains is None) == (self.columns is None):
                problems.append("a delimited layout names its columns by header_contains or by columns, one of them")
        if self.summary_widths is not None and self.summary_prefix is None:
            problems.append("summary_widths needs a summary_prefix")
        if self.record_kinds_mapped() - set(RECORD_KINDS):
            problems.append(f"record_kind maps to {sorted(self.record_kinds_mapped() - set(RECORD_KINDS))}")
        amount = self.fields.get("amount_fen")
        if isinstance(amount, AmountField) and amount.column_for_kind and not isinstance(
            self.fields.get("record_kind"), MapField
        ):
            problems.append("amount_fen.column_for_kind needs record_kind read by a map")
        if self.statuses_mapped() - set(STATUSES):
            problems.append(f"status maps to {sorted(self.statuses_mapped() - set(STATUSES))}")
        for total in self.control_totals:
            if total.source == "summary" and self.summary_prefix is None:
                problems.append("a summary control total needs a summary_prefix")
            if total.source == "footer" and not (self.end_marker or self.comment_prefix):
                problems.append("a footer control total needs an end_marker or a comment_prefix")
            if total.source == "summary_table" and self.end_marker is None:
                problems.append("a summary_table control total needs the end_marker that starts the table")
        for total in self.control_totals:
            if total.per_kind is not None and not isinstance(self.fields.get("record_kind"), MapField):
                problems.append("a control total per_kind needs record_kind read by a map")
        if self.business_date is not None and self.business_date.source == "summary" and self.summary_prefix is None:
            problems.append("a business date from the summary line needs a summary_prefix")
        known = set(self.columns or ()) if self.header_contains is None else None
        if known is not None:
            for target, spec in self.fields.items():
                strange = [c for c in spec.columns() if c not in known]
                if strange:
                    problems.append(f"fields.{target} reads {', '.join(strange)}, not among the columns")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def record_kinds_mapped(self) -> set[str]:
        return self._mapped("record_kind")

    def statuses_mapped(self) -> set[str]:
        return self._mapped("status")

    def _mapped(self, target: str) -> set[str]:
        spec = self.fields.get(target)
        if isinstance(spec, MapField):
            return set(spec.map.values()) | {value for value in (spec.default, spec.blank) if value is not None}
        if target in self.constant:
            return {self.constant[target]}
        return set()

    def used_columns(self) -> set[str]:
        """The file's columns some field or control total reads."""
        totals = {column for total in self.control_totals for column in (total.sums, total.per_column) if column}
        return {column for spec in self.fields.values() for column in spec.columns()} | totals


def _place(location: tuple[int | str, ...]) -> str:
    """``('layouts', 'bank_pipe_v1', 'fields', 'status', 'map', 'mapp')`` → ``layouts.bank_pipe_v1.
    fields.status.mapp``: the tag pydantic puts after a field's name (its kind) is left out."""
    parts: list[str] = []
    for n, part in enumerate(location):
        if n >= 2 and location[n - 2] == "fields" and part in ("column", "amount", "datetime", "map"):
            continue
        parts.append(f"[{part}]" if isinstance(part, int) else str(part))
    return ".".join(parts).replace(".[", "[")


_WHY = {
    "extra_forbidden": "unknown key (a typo?)",
    "missing": "missing",
}


class ChannelNames(_Spec):
    zh: str = ""
    en: str = ""


class ChannelEntry(_Spec):
    """One ``[channels.*]`` table (see :class:`reconcile.settings.ChannelConfig` for the meaning)."""

    layout: str
    also_layouts: tuple[str, ...] = ()
    lists_failures: bool = True
    expected_daily: bool = True
    file_pattern: str | None = None
    settles: bool = True
    currency: str = Field(default="CNY", pattern=r"^[A-Za-z]{3}$")
    name: ChannelNames = ChannelNames()

    _tuples = field_validator("also_layouts", mode="before")(_as_tuple)


def _problems(place: tuple[str, ...], error: ValidationError) -> list[str]:
    said = []
    for item in error.errors(include_url=False, include_input=False):
        why = _WHY.get(item["type"], item["msg"].removeprefix("Value error, "))
        said.append(f"{_place((*place, *item['loc']))}: {why}")
    return said


def _tables(section: str, config: dict[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    tables = config.get(section, {})
    if not isinstance(tables, dict):
        problems.append(f"{section}: a table of tables, not {type(tables).__name__}")
        return {}
    good = {}
    for name, table in tables.items():
        if isinstance(table, dict):
            good[name] = table
        else:
            problems.append(f"{section}.{name}: a table, not {type(table).__name__}")
    return good


def parse_layouts(tables: dict[str, Any]) -> dict[str, LayoutSpec]:
    """Every ``[layouts.*]`` table as a spec, or :class:`LayoutError` listing every problem."""
    problems: list[str] = []
    specs = _layouts(_tables("layouts", {"layouts": tables}, problems), problems)
    if problems:
        raise LayoutError(problems)
    return specs


def _extended(name: str, tables: dict[str, dict[str, Any]], problems: list[str]) -> dict[str, Any] | None:
    """The table of layout ``name`` with what it ``extends`` filled in: its own keys win, and its
    ``fields`` and ``constant`` are added to (or replace) the base's one by one."""
    table = tables[name]
    base_name = table.get("extends")
    if base_name is None:
        return table
    base = tables.get(base_name) if isinstance(base_name, str) else None
    if base is None:
        problems.append(f"layouts.{name}.extends: no layout named {base_name!r}")
        return None
    if "extends" in base:
        problems.append(f"layouts.{name}.extends: {base_name} extends another layout itself (one level only)")
        return None
    merged = {**base, **{key: value for key, value in table.items() if key != "extends"}}
    for key in ("fields", "constant"):
        if isinstance(base.get(key), dict) and isinstance(table.get(key), dict):
            merged[key] = {**base[key], **table[key]}
    return merged


def _layouts(tables: dict[str, dict[str, Any]], problems: list[str]) -> dict[str, LayoutSpec]:
    specs: dict[str, LayoutSpec] = {}
    for name in tables:
        table = _extended(name, tables, problems)
        if table is None:
            continue
        try:
            specs[name] = LayoutSpec.model_validate({**table, "name": name})
        except ValidationError as error:
            problems.extend(_problems(("layouts", name), error))
    for name, spec in specs.items():
        if spec.restates is not None and spec.restates not in tables:
            problems.append(f"layouts.{name}.restates: no layout named {spec.restates!r}")
    return specs


#: The sections a channel file may have.
SECTIONS = ("channels", "layouts")


def parse_channel_config(config: dict[str, Any]) -> tuple[dict[str, ChannelEntry], dict[str, LayoutSpec]]:
    """The whole channel file (``channels.toml``): its channels and layouts, checked together
    (a channel must name layouts that exist); :class:`LayoutError` lists every problem."""
    problems = [f"{key}: not a section of the channel file (one of {', '.join(SECTIONS)})" for key in config
                if key not in SECTIONS]  # fmt: skip
    layout_tables = _tables("layouts", config, problems)
    layouts = _layouts(layout_tables, problems)
    channels: dict[str, ChannelEntry] = {}
    for channel_id, table in _tables("channels", config, problems).items():
        try:
            channels[channel_id] = entry = ChannelEntry.model_validate(table)
        except ValidationError as error:
            problems.extend(_problems(("channels", channel_id), error))
            continue
        for key, names in (("layout", (entry.layout,)), ("also_layouts", entry.also_layouts)):
            problems.extend(
                f"channels.{channel_id}.{key}: no layout named {name!r}" for name in names if name not in layout_tables
            )
    if problems:
        raise LayoutError(problems)
    return channels, layouts
