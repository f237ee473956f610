"""The reader's parts, seam by seam; :mod:`reconcile.ingest` puts them together."""
