-- meterd PostgreSQL schema, version 3: clerks' actions on interval days in the audit trail.
--
-- An entry about an interval day has read_id 0 and its day (channel, date, revision, the
-- intervals changed) in `day`; entries about reads keep NULL there. The hash covers `day`
-- when it is present (AuditEntry::compute_hash), so the chain stays one chain.
ALTER TABLE audit ADD COLUMN day jsonb;
