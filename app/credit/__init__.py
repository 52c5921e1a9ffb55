"""Credit decisions: the pure policy, the reserving check and per-class parameters."""
