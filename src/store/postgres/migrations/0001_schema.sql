-- meterd PostgreSQL store, schema version 1: every table of the embedded (redb) store of
-- schema version 3, with real column types.
--
-- Conventions
-- * Quantities (register values, consumption, multipliers) are bigint micro-units: the i64
--   inside meterd's fixed-point Quantity (6 decimals), exact, no rounding through numeric.
-- * Times are timestamptz, kept to the microsecond as meterd does.
-- * A read's status is a smallint, ReadStatus::code() (the codes never move: new statuses are
--   appended); the other enums are text with the names meterd prints, checked.
-- * jsonb only for lists of varying length and shape: a read's codes and VEE flags, a batch's
--   frozen contents, a quarantine resolution's read ids. Being one value per row, they also
--   let the engine insert many rows with one statement of array binds
--   (INSERT ... SELECT * FROM UNNEST($1::bigint[], $2::text[], ..., $n::jsonb[])), which a
--   text[] column could not (UNNEST flattens an array of arrays).
-- * Ids come from sequences; the engine takes a block of them with
--   SELECT nextval('read_ids') FROM generate_series(1, $1).
-- * Reads and interval reads are partitioned by month of their time; the engine creates the
--   partition of a month before the first write into it (partitions.rs). Dropping a month of
--   old data is DROP TABLE of its partition.
-- * No advisory locks, no triggers, no stored procedures: what CockroachDB and YugabyteDB
--   accept as far as reasonable (declarative partitions are PostgreSQL's and YugabyteDB's).

CREATE SEQUENCE read_ids;
CREATE SEQUENCE batch_ids;
CREATE SEQUENCE quarantine_ids;
CREATE SEQUENCE outbox_ids;
CREATE SEQUENCE service_order_ids;

-- Meters as billing knows them. meters() lists by meter id (the primary key).
CREATE TABLE meters (
    meter_id    text PRIMARY KEY,
    account     text NOT NULL,
    route       text NOT NULL,
    sequence    bigint NOT NULL CHECK (sequence BETWEEN 0 AND 4294967295),
    service     text NOT NULL CHECK (service IN ('water', 'gas', 'electric')),
    unit        text NOT NULL,
    dials       smallint NOT NULL CHECK (dials BETWEEN 0 AND 255),
    decimals    smallint NOT NULL CHECK (decimals BETWEEN 0 AND 255),
    multiplier  bigint NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'inactive')),
    address     text NOT NULL,
    notes       text NOT NULL
);

-- One row per meter id ever validated, known meter or not (radio endpoints heard before
-- their meter is imported): the ingest transaction locks its meters' rows here (FOR UPDATE,
-- in id order) so that VEE for one meter runs in one instance at a time. Row locks, not
-- advisory locks: CockroachDB and YugabyteDB take them too.
CREATE TABLE meter_locks (
    meter_id  text PRIMARY KEY
);

-- The reads. The primary key includes the partition column (PostgreSQL requires it); read ids
-- are unique by their sequence, and reads_id finds one by id alone.
CREATE TABLE reads (
    id              bigint NOT NULL,
    meter_id        text NOT NULL,
    read_at         timestamptz NOT NULL,
    value           bigint NOT NULL,
    raw             text NOT NULL,
    read_type       text NOT NULL
                    CHECK (read_type IN ('manual', 'radio', 'probe', 'gateway', 'estimate', 'customer')),
    codes           jsonb NOT NULL DEFAULT '[]',
    reader          text,
    origin_kind     text NOT NULL CHECK (origin_kind IN ('file', 'cradle', 'gateway', 'probe', 'clerk')),
    origin_source   text NOT NULL,
    origin_locator  text NOT NULL,
    status          smallint NOT NULL CHECK (status >= 0),
    flags           jsonb NOT NULL DEFAULT '[]',
    consumption     bigint,
    -- ReadSummary::excluded (a duplicate or dial_overflow flag), so history needs no jsonb.
    excluded        boolean NOT NULL,
    received_at     timestamptz NOT NULL,
    batch_id        bigint,
    PRIMARY KEY (id, read_at)
) PARTITION BY RANGE (read_at);
-- read(id), update_read, billing's set_billing_state.
CREATE INDEX reads_id ON reads (id);
-- meter_histories (VEE: an index-only scan thanks to INCLUDE), meter_reads,
-- meter_reads_before, all_reads, "a read of this meter at this time".
CREATE INDEX reads_meter_time ON reads (meter_id, read_at, id)
    INCLUDE (value, consumption, status, excluded);
-- reads_with_status (review queue, billable reads), count_reads_by_status.
CREATE INDEX reads_status ON reads (status, id);

-- Billing batches; read_ids in the order handed out.
CREATE TABLE batches (
    id          bigint PRIMARY KEY,
    client      text NOT NULL,
    read_ids    bigint[] NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'acked')),
    created_at  timestamptz NOT NULL,
    acked_at    timestamptz
);
-- batches(status), oldest first.
CREATE INDEX batches_status ON batches (status, id);

-- The batch a billing client pulled and has not acked (open_batch(client)). A client's row
-- stays once made, with batch_id NULL while it has no open batch: lock_open_batch makes it
-- (ON CONFLICT DO NOTHING) and locks it (FOR UPDATE), so there is always a row to queue on and
-- two instances never open two batches for one client.
CREATE TABLE open_batches (
    client    text PRIMARY KEY,
    batch_id  bigint REFERENCES batches (id)
);

-- What a batch carried when created (BatchContents: lines and corrections), frozen so that
-- asking again returns the same bytes.
CREATE TABLE batch_contents (
    batch_id  bigint PRIMARY KEY REFERENCES batches (id),
    contents  jsonb NOT NULL
);

-- What billing last received for a read (billed(read)).
CREATE TABLE billed (
    read_id    bigint PRIMARY KEY,
    batch_id   bigint NOT NULL,
    value      bigint NOT NULL,
    read_at    timestamptz NOT NULL,
    withdrawn  boolean NOT NULL
);

-- Reads changed after billing had them (BilledReadChange), by read id.
CREATE TABLE billed_read_changes (
    read_id               bigint PRIMARY KEY,
    meter_id              text NOT NULL,
    -- What billing had (Billed), all four or none.
    billed_batch_id       bigint,
    billed_value          bigint,
    billed_read_at        timestamptz,
    billed_withdrawn      boolean,
    original_status       smallint NOT NULL,
    original_consumption  bigint,
    reason                text,
    changed_by            text,
    changed_at            timestamptz NOT NULL,
    audit_seq             bigint,
    correction_due        boolean NOT NULL,
    CHECK ((billed_batch_id IS NULL) = (billed_value IS NULL)
       AND (billed_batch_id IS NULL) = (billed_read_at IS NULL)
       AND (billed_batch_id IS NULL) = (billed_withdrawn IS NULL))
);
-- Corrections due for the next batch.
CREATE INDEX billed_read_changes_due ON billed_read_changes (read_id) WHERE correction_due;

-- Billing API tokens (hashes only), by client name.
CREATE TABLE api_tokens (
    name        text PRIMARY KEY,
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- Undecodable input (a large payload by its head, size and digest) and what a retry made of it.
CREATE TABLE quarantine (
    id                  bigint PRIMARY KEY,
    source              text NOT NULL,
    reason              text NOT NULL,
    payload             bytea NOT NULL,
    received_at         timestamptz NOT NULL,
    size                bigint NOT NULL,
    sha256              bytea NOT NULL CHECK (length(sha256) = 32),
    -- Stored bytes of the entry: the length of its postcard encoding (StoredQuarantine with its
    -- resolution), what the embedded store counts, so the size limit means the same on both;
    -- recomputed when the entry is resolved, summed in quarantine_usage.
    stored_bytes        bigint NOT NULL,
    resolved_at         timestamptz,
    resolved_by         text,
    resolution_reads    jsonb,
    resolution_outcome  text,
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL)
       AND (resolved_at IS NULL) = (resolution_reads IS NULL)
       AND (resolved_at IS NULL) = (resolution_outcome IS NULL))
);
-- purge_quarantine_before, the age limit of the retention.
CREATE INDEX quarantine_received ON quarantine (received_at, id);

-- Unresolved entries the retention limit or a purge removed, per source and reason class
-- (StoredQuarantine::summary_key); bytes: their payloads' original sizes.
CREATE TABLE quarantine_summary (
    source_class  text NOT NULL,
    reason_class  text NOT NULL,
    entries       bigint NOT NULL,
    bytes         bigint NOT NULL,
    oldest        timestamptz NOT NULL,
    newest        timestamptz NOT NULL,
    PRIMARY KEY (source_class, reason_class)
);

-- Entries and stored bytes in the quarantine now: one row kept as entries come and go, so
-- quarantine_usage and the size limit need no scan. Every quarantine writer locks this row
-- first (UPDATE), so instances adding, resolving and trimming at once keep it true.
CREATE TABLE quarantine_usage (
    id       smallint PRIMARY KEY CHECK (id = 1),
    entries  bigint NOT NULL,
    bytes    bigint NOT NULL
);
INSERT INTO quarantine_usage (id, entries, bytes) VALUES (1, 0, 0);

-- Gateway de-duplication keys, shared by every instance.
CREATE TABLE seen (
    namespace   text NOT NULL,
    key         bytea NOT NULL,
    first_seen  timestamptz NOT NULL,
    PRIMARY KEY (namespace, key)
);
-- forget_seen_before: window expiry takes the oldest off the front.
CREATE INDEX seen_by_time ON seen (namespace, first_seen);

-- MQTT gateways heard from.
CREATE TABLE gateways (
    gateway          text PRIMARY KEY,
    last_message_at  timestamptz,
    messages         bigint NOT NULL,
    undecodable      bigint NOT NULL,
    status           text,
    status_at        timestamptz,
    last_topic       text NOT NULL
);

-- IDM/NetIDM interval reads: usage in the 5 minutes ending at end_at. The primary key serves
-- interval_reads(meter, from, to) and the ±60 s "same interval heard again" lookup.
CREATE TABLE interval_reads (
    meter_id     text NOT NULL,
    end_at       timestamptz NOT NULL,
    number       smallint NOT NULL CHECK (number BETWEEN 0 AND 255),
    consumption  bigint NOT NULL CHECK (consumption >= 0),
    PRIMARY KEY (meter_id, end_at)
) PARTITION BY RANGE (end_at);

-- The last tamper counters seen from a radio endpoint (counters: the u64 bit field's bits as
-- a bigint, so a set top bit reads back negative in psql).
CREATE TABLE tamper_state (
    endpoint  text PRIMARY KEY,
    read_at   timestamptz NOT NULL,
    counters  bigint NOT NULL
);

-- Messages published back to the broker, removed on PUBACK; outbox(after, limit) by id.
CREATE TABLE outbox (
    id       bigint PRIMARY KEY,
    topic    text NOT NULL,
    payload  bytea NOT NULL
);

-- Which recorder reads a route.
CREATE TABLE route_assignments (
    route   text PRIMARY KEY,
    serial  text NOT NULL
);

-- Load history: every time a route went into a recorder; open entries are loaded now.
CREATE TABLE route_loads (
    route       text NOT NULL,
    loaded_at   timestamptz NOT NULL,
    serial      text NOT NULL,
    meters      bigint NOT NULL CHECK (meters BETWEEN 0 AND 4294967295),
    cleared_at  timestamptz,
    PRIMARY KEY (route, loaded_at)
);

-- Highest committed recorder read sequence per device serial (never lowered).
CREATE TABLE cradle_watermarks (
    serial  text PRIMARY KEY,
    seq     bigint NOT NULL CHECK (seq BETWEEN 0 AND 4294967295)
);

-- Meters skipped on a route (idempotent per recorder serial and sequence); route_skips(route)
-- by meter.
CREATE TABLE route_skips (
    route          text NOT NULL,
    meter_id       text NOT NULL,
    serial         text NOT NULL,
    seq            bigint NOT NULL CHECK (seq BETWEEN 0 AND 4294967295),
    at             timestamptz NOT NULL,
    code           text,
    trouble_codes  jsonb NOT NULL DEFAULT '[]',
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (route, meter_id, serial, seq)
);

-- The audit trail: append-only, hash-chained (hash = SHA-256 of prev_hash and the entry).
-- seq is the chain position the engine assigns (recorded length + 1); the primary key makes
-- two instances appending the same position conflict instead of forking the chain.
CREATE TABLE audit (
    seq         bigint PRIMARY KEY CHECK (seq >= 1),
    at          timestamptz NOT NULL,
    clerk       text NOT NULL,
    action      text NOT NULL CHECK (action IN ('accept', 'edit', 'estimate', 'reject', 'note', 'undo',
                                                'revalidate', 'approve', 'decline')),
    read_id     bigint NOT NULL,
    meter_id    text NOT NULL,
    old_value   bigint NOT NULL,
    new_value   bigint NOT NULL,
    old_status  smallint NOT NULL,
    new_status  smallint NOT NULL,
    reason      text NOT NULL,
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32)
);
-- The chain's recorded length and the hash of its last entry (zeros when empty): one row,
-- updated by each append. audit_tail() locks it (FOR UPDATE) until commit, which serialises
-- appends from several instances.
CREATE TABLE audit_tail (
    id    smallint PRIMARY KEY CHECK (id = 1),
    len   bigint NOT NULL CHECK (len >= 0),
    hash  bytea NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_tail (id, len, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- read_audit(read), meter_audit(meter), oldest first.
CREATE INDEX audit_by_read ON audit (read_id, seq);
CREATE INDEX audit_by_meter ON audit (meter_id, seq);

-- The read as it was before the change of audit entry seq, for undo: the read's row as
-- stored (the columns of reads, without the partitioning).
CREATE TABLE undo_snapshots (
    seq             bigint PRIMARY KEY REFERENCES audit (seq),
    id              bigint NOT NULL,
    meter_id        text NOT NULL,
    read_at         timestamptz NOT NULL,
    value           bigint NOT NULL,
    raw             text NOT NULL,
    read_type       text NOT NULL,
    codes           jsonb NOT NULL,
    reader          text,
    origin_kind     text NOT NULL,
    origin_source   text NOT NULL,
    origin_locator  text NOT NULL,
    status          smallint NOT NULL,
    flags           jsonb NOT NULL,
    consumption     bigint,
    excluded        boolean NOT NULL,
    received_at     timestamptz NOT NULL,
    batch_id        bigint
);

-- Re-read orders, by id.
CREATE TABLE service_orders (
    id          bigint PRIMARY KEY,
    meter_id    text NOT NULL,
    read_id     bigint NOT NULL,
    route       text NOT NULL,
    sequence    bigint NOT NULL CHECK (sequence BETWEEN 0 AND 4294967295),
    address     text NOT NULL,
    reason      text NOT NULL,
    due         date NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'completed', 'cancelled')),
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    closed_at   timestamptz,
    closed_by   text,
    outcome     text NOT NULL
);

-- Meter exchanges; meter_changes(meter) oldest first.
CREATE TABLE meter_changes (
    meter_id      text NOT NULL,
    at            timestamptz NOT NULL,
    old_serial    text NOT NULL,
    new_serial    text NOT NULL,
    old_dials     smallint NOT NULL CHECK (old_dials BETWEEN 0 AND 255),
    new_dials     smallint NOT NULL CHECK (new_dials BETWEEN 0 AND 255),
    install_read  bigint NOT NULL,
    removal_read  bigint,
    PRIMARY KEY (meter_id, at)
);
