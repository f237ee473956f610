"""The edges of the product: files, the database, Excel, Prefect and the command line."""
