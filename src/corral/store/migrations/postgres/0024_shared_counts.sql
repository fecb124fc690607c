-- Counts every replica shares (docs/replicas.md).
-- rate_windows: each rate-limit budget's fixed window, per key (a principal, an
-- address, an email). Replicas take allowances from it in chunks, so a principal's
-- budget is one across replicas. UNLOGGED: no WAL, so a take costs no fsync; a
-- crash of PostgreSQL empties it, which only gives every caller a fresh window.
CREATE UNLOGGED TABLE rate_windows (
    budget text NOT NULL,
    key text NOT NULL,
    window_start bigint NOT NULL,
    used bigint NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (budget, key, window_start)
);
CREATE INDEX rate_windows_expiry ON rate_windows (expires_at);
-- activity: claims, finishes and submit-to-start waits (by histogram bucket) per
-- 10-second slot, added by each replica once a second; slot 0 holds the all-time
-- totals. The dashboard's rates and wait percentiles are read from here, so every
-- replica shows the same figures.
CREATE TABLE activity (
    slot bigint NOT NULL,
    name text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (slot, name)
);
