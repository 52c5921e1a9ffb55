"""Assessment: evidence → score → grade → suggested limit and terms (DESIGN.md 2.1)."""
