-- 0016_owner_counts.sql
-- SandboxBroker schema, step 16: the per-owner limit is counted by the tenant grain, as its quotas are.
--
-- Owner grains kept a stored row per '{tenant}/{owner}' and wrote it on every new lease and every release. The tenant
-- grain, which every new lease already passes, now counts each owner's active claims in memory and reads them back from
-- broker_claims (its owner column is written with every claim's state) when it activates. The owner rows are no
-- longer read by anything; they go. Stop every silo of the old version before starting a new one.

DELETE FROM broker_grain_state WHERE state_name = 'owner';
