-- A record made by a claim from an unknown executor id (the original API lets an
-- executor claim without registering) is "seen", not registered: a `corral worker`
-- that finds itself so (after an admin removed it) registers again.
ALTER TABLE executors ADD COLUMN registered boolean NOT NULL DEFAULT true;
