using Npgsql;
using NpgsqlTypes;
using SandboxBroker.Storage;

namespace SandboxBroker.Persistence;

/// <summary>
/// The statements of the broker's grain storage (deploy/sql/0012_grain_state.sql). A write is one statement: the
/// version-checked state write, and, only when it wrote a row, the index upsert and the audit inserts (data-modifying
/// CTEs that read from it). Every parameter is typed, so NULLs need no inference.
/// </summary>
internal static class StateCommands
{
    private const string Returning = "RETURNING version";

    /// <summary>The SQLSTATE a half of a joint write raises when it matches no row (deploy/sql/0018_joint_writes.sql).</summary>
    public const string JointConflictState = "SB001";

    public static NpgsqlBatchCommand Read(string serviceId, IReadOnlyList<ReadOperation> reads)
    {
        // One primary-key lookup per key, whatever the statistics said when this statement was prepared. As a join the
        // planner may hash-join the keys against a scan of every row of the service (service_id = $1 is all of them): the
        // generic plan of a connection prepared while the table was nearly empty did exactly that, and kept doing it as
        // the table grew (8-12 ms per read in the benchmark until autoanalyze replanned it). LIMIT 1 keeps the subquery
        // from being pulled up into a join, so it runs per key with all three key columns as its index condition.
        var command = new NpgsqlBatchCommand("""
            SELECT s.state_name, s.grain_key, s.version, s.payload
            FROM unnest($2::text[], $3::text[]) AS k(state_name, grain_key)
            CROSS JOIN LATERAL (
                SELECT g.state_name, g.grain_key, g.version, g.payload FROM broker_grain_state g
                WHERE g.service_id = $1 AND g.state_name = k.state_name AND g.grain_key = k.grain_key
                LIMIT 1) s
            """);
        command.Parameters.Add(Text(serviceId));
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = reads.Select(r => r.StateName).ToArray() });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = reads.Select(r => r.GrainKey).ToArray() });
        return command;
    }

    /// <param name="joint">A half of a joint write: matching no row raises an error (rolling back the batch, and with it the
    /// other half) instead of answering no version.</param>
    public static NpgsqlBatchCommand Write(string serviceId, WriteOperation write, bool joint = false)
    {
        var index = write.IndexRow switch
        {
            null => IndexKind.None,
            ClaimRow => IndexKind.Claim,
            SandboxRow => IndexKind.Sandbox,
            _ => throw new ArgumentException($"no index for {write.IndexRow.GetType().Name}"),
        };
        var command = new NpgsqlBatchCommand(WriteSql[ShapeOf(write.ExpectedVersion is not null, index, write.Audit.Count > 0, joint)]);
        // The values in the order WriteText numbers their placeholders.
        var parameters = command.Parameters;
        void Add(params ReadOnlySpan<NpgsqlParameter> values)
        {
            foreach (var value in values)
            {
                parameters.Add(value);
            }
        }
        Add(Text(serviceId), Text(write.StateName), Text(write.GrainKey), new NpgsqlParameter<byte[]> { TypedValue = write.Payload, NpgsqlDbType = NpgsqlDbType.Bytea });
        if (write.ExpectedVersion is { } expected)
        {
            Add(Int(expected));
        }
        switch (write.IndexRow)
        {
            case ClaimRow c:
                Add(Text(c.ClaimKey), Text(c.Tenant), Text(c.Owner), Text(c.Pool), Text(c.SandboxId), Text(c.Status),
                    Time(c.AcquiredAt), Time(c.ExpiresAt), Time(c.LastActivityAt), Time(c.UpdatedAt), Time(c.WakeAt));
                break;
            case SandboxRow b:
                Add(Text(b.SandboxId), Text(b.Pool), Text(b.Provider), Text(b.Status), Text(b.Name), Text(b.ExternalId), Text(b.Tenant),
                    Text(b.Owner), Text(b.ClaimKey), Time(b.CreatedAt), Time(b.UpdatedAt), Time(b.ExpiresAt), Time(b.WakeAt));
                break;
        }
        if (write.Audit is { Count: > 0 } events)
        {
            Add(Times(events, e => e.OccurredAt), Texts(events, e => e.EntityType), Texts(events, e => e.EntityId), Texts(events, e => e.Event),
                Texts(events, e => e.FromState), Texts(events, e => e.ToState), Texts(events, e => e.Actor), Texts(events, e => e.DetailsJson));
        }
        return command;
    }

    private enum IndexKind { None, Claim, Sandbox }

    private static int ShapeOf(bool update, IndexKind index, bool audit, bool joint) =>
        (update ? 1 : 0) + 2 * (int)index + 6 * (audit ? 1 : 0) + 12 * (joint ? 1 : 0);

    /// <summary>
    /// The text of every shape of write (insert or update, which index row, audit rows or not), made once: the text
    /// does not depend on the values, and building a 2 KB string for every write was a visible share of the silo's
    /// allocations.
    /// </summary>
    private static readonly string[] WriteSql =
    [
        .. from joint in new[] { false, true }
           from audit in new[] { false, true }
           from index in new[] { IndexKind.None, IndexKind.Claim, IndexKind.Sandbox }
           from update in new[] { false, true }
           select WriteText(update, index, audit, joint),
    ];

    private static string WriteText(bool update, IndexKind index, bool audit, bool joint)
    {
        var p = new Placeholders();
        var (service, state, key, payload) = (p.Next(), p.Next(), p.Next(), p.Next());
        var stateWrite = update
            ? $"""
              UPDATE broker_grain_state SET payload = {payload}, version = version + 1, modified_on = now()
              WHERE service_id = {service} AND state_name = {state} AND grain_key = {key} AND version = {p.Next()}
              {Returning}
              """
            : $"""
              INSERT INTO broker_grain_state (service_id, state_name, grain_key, version, payload)
              VALUES ({service}, {state}, {key}, 1, {payload})
              ON CONFLICT DO NOTHING
              {Returning}
              """;
        var parts = new List<string> { $"w AS ({stateWrite})" };
        switch (index)
        {
            case IndexKind.Claim:
                parts.Add($"ic AS ({ClaimUpsert(p)})");
                break;
            case IndexKind.Sandbox:
                parts.Add($"isb AS ({SandboxUpsert(p)})");
                break;
        }
        if (audit)
        {
            parts.Add($"a AS ({AuditInsert(p)})");
        }
        // The transaction's id comes back with the version: a sandbox's status notice carries it, so the pool can tell
        // whether a count it read from the index already holds this change (CommitSnapshot).
        var result = joint
            ? "SELECT broker_joint_written((SELECT version FROM w)), pg_current_xact_id()"
            : "SELECT version, pg_current_xact_id() FROM w";
        return $"WITH {string.Join(",\n", parts)}\n{result}";
    }

    public static NpgsqlBatchCommand Clear(string serviceId, ClearOperation clear)
    {
        var command = new NpgsqlBatchCommand();
        var p = new Parameters(command);
        var sql = $"""
            WITH w AS (
                DELETE FROM broker_grain_state
                WHERE service_id = {p.Add(Text(serviceId))} AND state_name = {p.Add(Text(clear.StateName))}
                  AND grain_key = {p.Add(Text(clear.GrainKey))} AND version = {p.Add(Int(clear.ExpectedVersion))}
                {Returning})
            """;
        sql += clear.IndexRow switch
        {
            ClaimRow claim => $", i AS (DELETE FROM broker_claims WHERE claim_key = {p.Add(Text(claim.ClaimKey))} AND EXISTS (SELECT FROM w))",
            SandboxRow sandbox => $", i AS (DELETE FROM broker_sandboxes WHERE sandbox_id = {p.Add(Text(sandbox.SandboxId))} AND EXISTS (SELECT FROM w))",
            _ => "",
        };
        command.CommandText = sql + "\nSELECT version FROM w";
        return command;
    }

    private static string ClaimUpsert(Placeholders p) => $"""
        INSERT INTO broker_claims (claim_key, tenant, owner, pool, sandbox_id, status, acquired_at, expires_at, last_activity_at, updated_at, wake_at)
        SELECT {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()},
               {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()},
               {p.Next()}, {p.Next()}
        FROM w
        ON CONFLICT (claim_key) DO UPDATE SET
            tenant = EXCLUDED.tenant, owner = EXCLUDED.owner, pool = EXCLUDED.pool, sandbox_id = EXCLUDED.sandbox_id,
            status = EXCLUDED.status, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at,
            last_activity_at = EXCLUDED.last_activity_at, updated_at = EXCLUDED.updated_at, wake_at = EXCLUDED.wake_at
        """;

    private static string SandboxUpsert(Placeholders p) => $"""
        INSERT INTO broker_sandboxes (sandbox_id, pool, provider, status, name, external_id, tenant, owner, claim_key, created_at, updated_at, expires_at, wake_at)
        SELECT {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()},
               {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()},
               {p.Next()}, {p.Next()}, {p.Next()}, {p.Next()}
        FROM w
        ON CONFLICT (sandbox_id) DO UPDATE SET
            pool = EXCLUDED.pool, provider = EXCLUDED.provider, status = EXCLUDED.status, name = EXCLUDED.name,
            external_id = EXCLUDED.external_id, tenant = EXCLUDED.tenant, owner = EXCLUDED.owner, claim_key = EXCLUDED.claim_key,
            updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at, wake_at = EXCLUDED.wake_at
        """;

    private static string AuditInsert(Placeholders p) => $"""
        INSERT INTO broker_audit_log (occurred_at, entity_type, entity_id, event, from_state, to_state, actor, details)
        SELECT e.occurred_at, e.entity_type, e.entity_id, e.event, e.from_state, e.to_state, e.actor, e.details::jsonb
        FROM w, unnest({p.Next()}, {p.Next()},
                       {p.Next()}, {p.Next()},
                       {p.Next()}, {p.Next()},
                       {p.Next()}, {p.Next()})
             AS e(occurred_at, entity_type, entity_id, event, from_state, to_state, actor, details)
        """;

    // Typed parameters, so no value is boxed: a write has 20 to 30 of them, and they were the largest share of the silo's
    // allocations. Arrays get their type from their element type: naming it (NpgsqlDbType.Array | ...) made Npgsql build the
    // array type's name again for every parameter it bound.
    private static NpgsqlParameter Text(string? value) => new NpgsqlParameter<string?> { TypedValue = Clean(value), NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Int(int value) => new NpgsqlParameter<int> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Integer };

    private static NpgsqlParameter Time(DateTimeOffset? value) => value is { } time
        ? new NpgsqlParameter<DateTime> { TypedValue = time.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz }
        : new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };

    /// <summary>A text[] of one field of each event.</summary>
    private static NpgsqlParameter Texts(IReadOnlyList<AuditEvent> events, Func<AuditEvent, string?> field)
    {
        var values = new string?[events.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Clean(field(events[i]));
        }
        return new NpgsqlParameter<string?[]> { TypedValue = values };
    }

    /// <summary>A timestamptz[] of one field of each event (UTC, which Npgsql maps to timestamptz).</summary>
    private static NpgsqlParameter Times(IReadOnlyList<AuditEvent> events, Func<AuditEvent, DateTimeOffset> field)
    {
        var values = new DateTime[events.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = field(events[i]).UtcDateTime;
        }
        return new NpgsqlParameter<DateTime[]> { TypedValue = values };
    }

    /// <summary>
    /// Postgres text and jsonb hold no NUL (a string with one fails the statement, and with it the state write it rides
    /// with): a NUL, raw or JSON-escaped, is stored as U+FFFD. The edge refuses control characters; this keeps a record
    /// from ever being what fails a lifecycle change.
    /// </summary>
    private static string? Clean(string? value) =>
        value is null || (!value.Contains('\0') && !value.Contains("\\u0000", StringComparison.Ordinal))
            ? value
            : value.Replace('\0', '\uFFFD').Replace("\\u0000", "\\uFFFD", StringComparison.Ordinal);

    /// <summary>Positional parameters: each added one is named by the $n it takes.</summary>
    private sealed class Parameters(NpgsqlBatchCommand command)
    {
        public string Add(NpgsqlParameter parameter)
        {
            command.Parameters.Add(parameter);
            return "$" + command.Parameters.Count;
        }
    }

    /// <summary>Numbers the placeholders of a statement's text, in the order its values are added.</summary>
    private sealed class Placeholders
    {
        private int _count;

        public string Next() => "$" + ++_count;
    }
}
