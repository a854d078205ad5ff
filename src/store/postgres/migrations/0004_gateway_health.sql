-- Gateway health you can act on: frames decoded, undecodable messages by reason
-- ({"crc": 3, "key": 12, ...}: the reasons grow with the formats, hence jsonb), and the
-- current and previous health windows the undecodable-share alert is judged on.
-- Rows from before this version: decoded is what was not undecodable; their undecodable
-- messages have no reason recorded.
ALTER TABLE gateways
    ADD COLUMN decoded          bigint NOT NULL DEFAULT 0,
    ADD COLUMN undecodable_by   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN health_window    jsonb NOT NULL DEFAULT '{"started_at": null, "messages": 0, "undecodable": {}}',
    ADD COLUMN previous_window  jsonb;
UPDATE gateways SET decoded = messages - undecodable WHERE messages >= undecodable;
