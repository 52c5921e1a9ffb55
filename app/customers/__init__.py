"""Credit accounts: terms, limits, maintained exposure aggregates and the credit file."""
