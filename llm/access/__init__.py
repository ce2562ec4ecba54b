"""Cost and access control: the spend ledger and caps, rate limits, the admin password."""
