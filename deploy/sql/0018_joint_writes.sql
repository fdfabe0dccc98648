-- 0018_joint_writes.sql
-- SandboxBroker schema, step 18: joint writes.
--
-- A warm lease stores two grains' states: the claim's (the lease naming its sandbox) and the sandbox's (`leased`). The
-- grain storage sends them in one batch, one transaction (src/Persistence/JointWrites.cs), and they must be stored
-- together or not at all. A batch's statements commit together unless one fails, but a version-checked write that
-- matches no row does not fail: it answers no version, and its neighbours commit. So each half of a joint write ends
-- with this check, which turns "no row written" into an error that rolls back the whole batch; the writer then runs
-- the batch's operations one by one and answers the pair as a conflict for both grains.
CREATE OR REPLACE FUNCTION broker_joint_written(written integer) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF written IS NULL THEN
        RAISE EXCEPTION 'a half of a joint write matched no row (its version moved on): neither half is stored'
            USING ERRCODE = 'SB001';
    END IF;
    RETURN written;
END
$$;
