"""`make bench`: the REST facade measured against the bare Temporal SDK on the embedded stack."""
