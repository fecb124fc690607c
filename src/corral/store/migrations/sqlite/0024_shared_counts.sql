-- Counts every replica shares on PostgreSQL; the same tables here, so one contract
-- suite covers both stores (with SQLite's one process, rate limits stay in memory).
-- rate_windows: each rate-limit budget's fixed window, per key.
CREATE TABLE rate_windows (
    budget TEXT NOT NULL,
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    used INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (budget, key, window_start)
);
CREATE INDEX rate_windows_expiry ON rate_windows (expires_at);
-- activity: claims, finishes and submit-to-start waits (by histogram bucket) per
-- 10-second slot; slot 0 holds the all-time totals. The dashboard reads its figures here.
CREATE TABLE activity (
    slot INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (slot, name)
);
