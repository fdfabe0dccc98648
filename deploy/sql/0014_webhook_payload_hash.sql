-- ---------------------------------------------------------------------------------------------------
-- GitHub webhook deliveries: the SHA-256 of each payload, so the same body sent again under a new
-- X-GitHub-Delivery id is recognised as the delivery it repeats (and never processed twice). Unique:
-- of two concurrent copies, one inserts and the other finds it. Rows from before this step have none.
-- Idempotent.
-- ---------------------------------------------------------------------------------------------------
ALTER TABLE broker_webhook_deliveries ADD COLUMN IF NOT EXISTS payload_sha256 bytea NULL;

CREATE UNIQUE INDEX IF NOT EXISTS ux_broker_webhook_deliveries_payload_sha256
    ON broker_webhook_deliveries (payload_sha256);
