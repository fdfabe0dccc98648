-- 0019_gentle_autovacuum.sql
-- SandboxBroker schema, step 19: autovacuum of the hot tables spread out instead of in bursts.
--
-- Every lease writes broker_grain_state, broker_sandboxes, broker_claims and broker_audit_log, so while leases are
-- taken autovacuum visits all four every minute (its naptime), vacuuming and analyzing each. On the 2-core benchmark
-- machine one such visit took 1.1-1.9 s of CPU within 2-3 s (the log with log_autovacuum_min_duration = 0), on a
-- machine already 85 % busy at 1,000 leases a second, and each visit was a stall of 150-250 ms in the leases' latency
-- in the same second (docs/BENCHMARKS.md, round 21). The work has to be done; it need not be done at once:
--
--   autovacuum_vacuum_cost_delay 10 ms (the server's default is 2 ms): a vacuum sleeps five times as long per unit of
--       work, so the same CPU is spread over five times the time. These tables are small beside the work a vacuum can
--       do at that pace (a pass over broker_grain_state after 25,000 leases: about 31,000 cost units, 1.6 s of sleep).
--   payload and details without statistics: no query filters on a grain's serialized state or an audit row's
--       details, and computing statistics for them was most of what analyzing those two tables cost.
--   broker_grain_state and broker_audit_log analyzed after half their rows changed instead of a tenth: the first is
--       only ever read by its primary key, the second by its entity index and its time range (BRIN), and their
--       statistics barely move as they grow.
--
-- The claims' and sandboxes' statistics stay as they are: the sweeps' and pools' queries are planned with them.
-- Idempotent.

ALTER TABLE broker_grain_state SET (autovacuum_vacuum_cost_delay = 10, autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE broker_grain_state ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE broker_audit_log SET (autovacuum_vacuum_cost_delay = 10, autovacuum_analyze_scale_factor = 0.5);
ALTER TABLE broker_audit_log ALTER COLUMN details SET STATISTICS 0;
ALTER TABLE broker_sandboxes SET (autovacuum_vacuum_cost_delay = 10);
ALTER TABLE broker_claims SET (autovacuum_vacuum_cost_delay = 10);
