"""The console: server-rendered pages for credit controllers (DESIGN 2.7)."""
