-- meterd PostgreSQL schema, version 2: interval (AMI) data.
--
-- * A meter-channel-day is one row: the local day's values and quality as arrays (NEM12's and
--   the MDM systems' layout, interval-data.md §5), so a day's VEE reads one row and a year of
--   15-minute data of a meter is 365 rows, not 35,040.
-- * Values are bigint micro-units (meterd's Quantity), NULL where missing. quality is one
--   character per interval (A E S F N); methods one text per interval (NULL, linear, like_day,
--   nem12_NN); value_source indexes sources. Flags vary by rule: jsonb.
-- * interval_days is partitioned by month of its local date, as reads are by time.

-- A meter's channels: channels(meter) by primary key order.
CREATE TABLE channels (
    meter_id   text NOT NULL,
    channel    text NOT NULL,
    unit       text NOT NULL,
    direction  text NOT NULL CHECK (direction IN ('delivered', 'received')),
    PRIMARY KEY (meter_id, channel)
);

CREATE TABLE interval_days (
    meter_id          text NOT NULL,
    channel           text NOT NULL,
    date              date NOT NULL,
    interval_minutes  smallint NOT NULL CHECK (interval_minutes IN (5, 15, 30, 60)),
    vals              bigint[] NOT NULL,
    quality           text NOT NULL,
    methods           text[] NOT NULL,
    outages           smallint[] NOT NULL,
    status            smallint NOT NULL CHECK (status >= 0),
    flags             jsonb NOT NULL,
    sources           text[] NOT NULL,
    value_source      smallint[] NOT NULL,
    received_at       timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    batch_id          bigint,
    rev               bigint NOT NULL,
    PRIMARY KEY (meter_id, channel, date)
) PARTITION BY RANGE (date);
-- interval_days_with_status (review queue, billable days), in key order.
CREATE INDEX interval_days_status ON interval_days (status, meter_id, channel, date);

-- Interval batches: ids from the batch sequence, shared with read batches.
CREATE TABLE interval_batches (
    id          bigint PRIMARY KEY,
    client      text NOT NULL,
    days        jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'acked')),
    created_at  timestamptz NOT NULL,
    acked_at    timestamptz
);

CREATE TABLE open_interval_batches (
    client    text PRIMARY KEY,
    batch_id  bigint REFERENCES interval_batches (id)
);

-- What an interval batch carried, frozen so that asking again returns the same bytes.
CREATE TABLE interval_batch_contents (
    batch_id  bigint PRIMARY KEY REFERENCES interval_batches (id),
    contents  jsonb NOT NULL
);
