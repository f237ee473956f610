"""The pure core of the reconciliation product.

Everything in this package takes and returns polars frames and plain values. It reads no file,
opens no database and knows nothing of Prefect: those live in ``flows/``.
"""
