"""Events and webhooks: the transactional outbox, the feed, signed deliveries (DESIGN 2.5)."""
