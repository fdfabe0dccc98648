-- ---------------------------------------------------------------------------------------------------
-- GitHub webhook deliveries: a processing lease, so several gateways share the work and never process
-- one delivery at once; what processing did; an index for retention. Idempotent.
-- ---------------------------------------------------------------------------------------------------
ALTER TABLE broker_webhook_deliveries ADD COLUMN IF NOT EXISTS locked_until  timestamptz NULL;  -- a processor holds it until then
ALTER TABLE broker_webhook_deliveries ADD COLUMN IF NOT EXISTS locked_by     text        NULL;  -- which processor (gateway instance)
ALTER TABLE broker_webhook_deliveries ADD COLUMN IF NOT EXISTS outcome       text        NULL;  -- what processing did, or why it was ignored
ALTER TABLE broker_webhook_deliveries ADD COLUMN IF NOT EXISTS redeliveries  integer     NOT NULL DEFAULT 0;  -- X-GitHub-Delivery seen again
ALTER TABLE broker_webhook_deliveries ADD COLUMN IF NOT EXISTS last_seen_at  timestamptz NULL;  -- the latest (re)delivery

-- The processor's queue: deliveries waiting, oldest first.
CREATE INDEX IF NOT EXISTS ix_broker_webhook_deliveries_pending
    ON broker_webhook_deliveries (received_at, delivery_id) WHERE status = 'received';

-- Retention pruning by age.
CREATE INDEX IF NOT EXISTS ix_broker_webhook_deliveries_received_at
    ON broker_webhook_deliveries (received_at);
