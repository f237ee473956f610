"""Funds reconciliation (资金对账): the money each channel collected reaches the collection account.

The transaction side (``reconcile/matching.py``) proves each debit against its instruction; this
package proves the money. Each module is pure, frames in and frames out:

- :mod:`~reconcile.funds.workdays`: the mainland calendar of working days, and the window of value
  dates a settlement rule (T+1, D+1 …) gives a business date;
- :mod:`~reconcile.funds.rules`: the per-channel settlement, fee and counterparty rules, checked
  like the layouts are;
- :mod:`~reconcile.funds.expectations`: one expected settlement per channel × merchant × business
  date, with its expected fee;
- :mod:`~reconcile.funds.statements`: the collection account's statement (camt.053, MT940, Chinese
  online-banking exports) as statement lines, each classified by counterparty and reference;
- :mod:`~reconcile.funds.passes`: expectations meet credits in ordered passes; exact ones apply,
  near ones are proposals with a score;
- :mod:`~reconcile.funds.clearing`: the clearing balance per channel, rolled forward day by day.
"""
