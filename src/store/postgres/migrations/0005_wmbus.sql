-- meterd PostgreSQL schema, version 4: wireless M-Bus compact frames.
--
-- wmbus_layouts: the DIF/VIF layout of a meter type's full frame, by manufacturer, version,
-- device type and format signature (its CRC), so a compact frame decodes after a restart.
-- wmbus_held: compact frames whose layout is not known yet, held until a full frame of their
-- meter type teaches it (bounded by meterd: MAX_HELD).
CREATE TABLE wmbus_layouts (
    manufacturer integer NOT NULL,
    version smallint NOT NULL,
    device_type smallint NOT NULL,
    signature integer NOT NULL,
    layout bytea NOT NULL,
    PRIMARY KEY (manufacturer, version, device_type, signature)
);

CREATE TABLE wmbus_held (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    locator text NOT NULL,
    gateway text NOT NULL,
    payload bytea NOT NULL,
    received_at timestamptz NOT NULL,
    meter text NOT NULL,
    manufacturer integer NOT NULL,
    version smallint NOT NULL,
    device_type smallint NOT NULL,
    signature integer NOT NULL
);
