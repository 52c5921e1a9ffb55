"""The credit file: the append-only history of every decision, change and ledger event."""
