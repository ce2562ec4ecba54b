"""Cost and access control: the spend ledger and caps, rate limits, the admin password, user
accounts and the collections that say who reads which documents."""
