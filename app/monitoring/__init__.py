"""Watching accounts: early-warning alerts, reviews due, and the daily sweep."""
