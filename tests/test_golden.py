"""Each golden day reproduces its expected outcomes and installment states; a failure prints a diff."""

from __future__ import annotations

import difflib

import polars as pl
import pytest

from tests.golden_days import DAYS, GOLDEN, GoldenDay, run_day, run_day_in_memory

pytestmark = pytest.mark.slow


def _diff(expected: pl.DataFrame, actual: pl.DataFrame, name: str) -> str:
    lines = difflib.unified_diff(
        expected.write_csv().splitlines(), actual.write_csv().splitlines(), f"expected {name}", f"actual {name}",
        lineterm="", n=1,
    )  # fmt: skip
    return "\n".join(list(lines)[:80])


@pytest.mark.parametrize("day", DAYS, ids=[d.name for d in DAYS])
def test_golden_day(day: GoldenDay) -> None:
    folder = GOLDEN / day.name
    if not (folder / "expected_outcomes.csv").exists():
        pytest.fail(f"{day.name} has no expected files: run `python -m tests.golden_days write-expected`")
    outcomes, installments = run_day(day)
    expected_outcomes = pl.read_csv(folder / "expected_outcomes.csv", schema=outcomes.schema)
    expected_installments = pl.read_csv(folder / "expected_installments.csv", schema=installments.schema)
    assert outcomes.equals(expected_outcomes), _diff(expected_outcomes, outcomes, "outcomes")
    assert installments.equals(expected_installments), _diff(expected_installments, installments, "installments")


@pytest.mark.parametrize("day", DAYS, ids=[d.name for d in DAYS])
def test_golden_day_without_a_database(day: GoldenDay) -> None:
    """The core alone (``reconcile.day``, the whole book in memory) decides the same as the run."""
    folder = GOLDEN / day.name
    outcomes, installments = run_day_in_memory(day)
    expected_outcomes = pl.read_csv(folder / "expected_outcomes.csv", schema=outcomes.schema)
    expected_installments = pl.read_csv(folder / "expected_installments.csv", schema=installments.schema)
    assert outcomes.equals(expected_outcomes), _diff(expected_outcomes, outcomes, "outcomes")
    assert installments.equals(expected_installments), _diff(expected_installments, installments, "installments")


@pytest.mark.parametrize("day", DAYS, ids=[d.name for d in DAYS])
def test_golden_expectations_agree_with_the_generators_manifest(day: GoldenDay) -> None:
    """The stored expectations are not just what the code once said: they match the ground truth."""
    folder = GOLDEN / day.name
    manifest = pl.read_csv(folder / "manifest.csv", infer_schema=False)
    stored = pl.read_csv(folder / "expected_outcomes.csv", infer_schema=False)
    manifest = manifest.with_columns(
        key=pl.when(pl.col("subject") == "record").then(pl.col("subject_key")).otherwise(pl.col("subject_key"))
    )
    joined = manifest.join(stored, left_on="key", right_on="record_key", how="left")
    wrong = joined.filter(pl.col("expected_outcome").ne_missing(pl.col("outcome")))
    assert wrong.height == 0, f"{day.name}: stored outcomes differ from the manifest:\n{wrong}"


def test_explaining_only_exceptions_gives_what_explaining_every_row_gives() -> None:
    """``explain`` builds texts only for exception rows; the plain rule builds them for every row."""
    from reconcile.explain import _explain_rows, explain
    from tests.golden_days import day_outcomes_in_memory

    outcomes = day_outcomes_in_memory(DAYS[6])  # busier_day
    raw = outcomes.drop("severity", "explanation_zh", "explanation_en", "suggested_action", "is_exception")
    assert outcomes.filter(pl.col("outcome") == "MATCHED").height > 0
    assert explain(raw).equals(_explain_rows(raw))


def test_explaining_a_day_without_exceptions_or_without_rows_gives_what_the_plain_rule_gives() -> None:
    """Texts are scattered back by row: a day with none to scatter, or no rows at all, keeps its
    columns, types and order."""
    from reconcile.explain import _explain_rows, explain
    from tests.golden_days import day_outcomes_in_memory

    raw = day_outcomes_in_memory(DAYS[6]).drop(
        "severity", "explanation_zh", "explanation_en", "suggested_action", "is_exception"
    )
    matched = raw.filter(pl.col("outcome") == "MATCHED")
    exceptions = raw.filter(pl.col("outcome") != "MATCHED")
    assert matched.height > 0 and exceptions.height > 0
    for frame in (matched, exceptions, raw.clear(), raw.reverse()):
        got = explain(frame)
        assert got.equals(_explain_rows(frame)), frame.height
        assert got.columns == _explain_rows(frame).columns
    assert explain(matched)["explanation_zh"].eq("").all()
    assert explain(exceptions)["explanation_zh"].ne("").all()
