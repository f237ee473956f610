"""The I/O stages of a run, one module each: discover (files in), load (rows in), write (rows out,
one transaction), archive (files away). The decisions between them are ``reconcile/``'s."""
