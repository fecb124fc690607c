-- Idempotency records are kept for a while (CORRAL_IDEMPOTENCY_TTL) and then swept,
-- oldest first, a small batch at a time: this index finds the oldest without a scan.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
