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

    public static NpgsqlBatchCommand Read(string serviceId, IReadOnlyList<ReadOperation> reads)
    {
        // LATERAL: one primary-key lookup per key. As a plain join, the generic plan of this prepared statement expects a
        // hundred keys and hash-joins them against an index scan on service_id alone, which reads every row of the table
        // (the benchmark saw 15,000 rows read per warm acquire).
        var command = new NpgsqlBatchCommand("""
            SELECT s.state_name, s.grain_key, s.version, s.payload
            FROM unnest($2::text[], $3::text[]) AS k(state_name, grain_key)
            CROSS JOIN LATERAL (
                SELECT g.state_name, g.grain_key, g.version, g.payload FROM broker_grain_state g
                WHERE g.service_id = $1 AND g.state_name = k.state_name AND g.grain_key = k.grain_key) s
            """);
        command.Parameters.Add(Text(serviceId));
        command.Parameters.Add(new NpgsqlParameter { Value = reads.Select(r => r.StateName).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = reads.Select(r => r.GrainKey).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        return command;
    }

    public static NpgsqlBatchCommand Write(string serviceId, WriteOperation write)
    {
        var command = new NpgsqlBatchCommand();
        var p = new Parameters(command);
        var service = p.Add(Text(serviceId));
        var state = p.Add(Text(write.StateName));
        var key = p.Add(Text(write.GrainKey));
        var payload = p.Add(new NpgsqlParameter { Value = write.Payload, NpgsqlDbType = NpgsqlDbType.Bytea });
        var stateWrite = write.ExpectedVersion is { } expected
            ? $"""
              UPDATE broker_grain_state SET payload = {payload}, version = version + 1, modified_on = now()
              WHERE service_id = {service} AND state_name = {state} AND grain_key = {key} AND version = {p.Add(Int(expected))}
              {Returning}
              """
            : $"""
              INSERT INTO broker_grain_state (service_id, state_name, grain_key, version, payload)
              VALUES ({service}, {state}, {key}, 1, {payload})
              ON CONFLICT DO NOTHING
              {Returning}
              """;
        var parts = new List<string> { $"w AS ({stateWrite})" };
        switch (write.IndexRow)
        {
            case ClaimRow claim:
                parts.Add($"ic AS ({ClaimUpsert(claim, p)})");
                break;
            case SandboxRow sandbox:
                parts.Add($"isb AS ({SandboxUpsert(sandbox, p)})");
                break;
            case null:
                break;
            default:
                throw new ArgumentException($"no index for {write.IndexRow.GetType().Name}");
        }
        if (write.Audit.Count > 0)
        {
            parts.Add($"a AS ({AuditInsert(write.Audit, p)})");
        }
        command.CommandText = $"WITH {string.Join(",\n", parts)}\nSELECT version FROM w";
        return command;
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

    private static string ClaimUpsert(ClaimRow c, Parameters p) => $"""
        INSERT INTO broker_claims (claim_key, tenant, owner, pool, sandbox_id, status, acquired_at, expires_at, last_activity_at, updated_at, wake_at)
        SELECT {p.Add(Text(c.ClaimKey))}, {p.Add(Text(c.Tenant))}, {p.Add(Text(c.Owner))}, {p.Add(Text(c.Pool))}, {p.Add(Text(c.SandboxId))},
               {p.Add(Text(c.Status))}, {p.Add(Time(c.AcquiredAt))}, {p.Add(Time(c.ExpiresAt))}, {p.Add(Time(c.LastActivityAt))},
               {p.Add(Time(c.UpdatedAt))}, {p.Add(Time(c.WakeAt))}
        FROM w
        ON CONFLICT (claim_key) DO UPDATE SET
            tenant = EXCLUDED.tenant, owner = EXCLUDED.owner, pool = EXCLUDED.pool, sandbox_id = EXCLUDED.sandbox_id,
            status = EXCLUDED.status, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at,
            last_activity_at = EXCLUDED.last_activity_at, updated_at = EXCLUDED.updated_at, wake_at = EXCLUDED.wake_at
        """;

    private static string SandboxUpsert(SandboxRow s, Parameters p) => $"""
        INSERT INTO broker_sandboxes (sandbox_id, pool, provider, status, name, external_id, tenant, owner, claim_key, created_at, updated_at, expires_at, wake_at)
        SELECT {p.Add(Text(s.SandboxId))}, {p.Add(Text(s.Pool))}, {p.Add(Text(s.Provider))}, {p.Add(Text(s.Status))}, {p.Add(Text(s.Name))},
               {p.Add(Text(s.ExternalId))}, {p.Add(Text(s.Tenant))}, {p.Add(Text(s.Owner))}, {p.Add(Text(s.ClaimKey))},
               {p.Add(Time(s.CreatedAt))}, {p.Add(Time(s.UpdatedAt))}, {p.Add(Time(s.ExpiresAt))}, {p.Add(Time(s.WakeAt))}
        FROM w
        ON CONFLICT (sandbox_id) DO UPDATE SET
            pool = EXCLUDED.pool, provider = EXCLUDED.provider, status = EXCLUDED.status, name = EXCLUDED.name,
            external_id = EXCLUDED.external_id, tenant = EXCLUDED.tenant, owner = EXCLUDED.owner, claim_key = EXCLUDED.claim_key,
            updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at, wake_at = EXCLUDED.wake_at
        """;

    private static string AuditInsert(IReadOnlyList<AuditEvent> events, Parameters p) => $"""
        INSERT INTO broker_audit_log (occurred_at, entity_type, entity_id, event, from_state, to_state, actor, details)
        SELECT e.occurred_at, e.entity_type, e.entity_id, e.event, e.from_state, e.to_state, e.actor, e.details::jsonb
        FROM w, unnest({p.Add(Times(events.Select(e => e.OccurredAt)))}, {p.Add(Texts(events.Select(e => e.EntityType)))},
                       {p.Add(Texts(events.Select(e => e.EntityId)))}, {p.Add(Texts(events.Select(e => e.Event)))},
                       {p.Add(Texts(events.Select(e => e.FromState)))}, {p.Add(Texts(events.Select(e => e.ToState)))},
                       {p.Add(Texts(events.Select(e => e.Actor)))}, {p.Add(Texts(events.Select(e => e.DetailsJson)))})
             AS e(occurred_at, entity_type, entity_id, event, from_state, to_state, actor, details)
        """;

    private static NpgsqlParameter Text(string? value) => new() { Value = (object?)Clean(value) ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Int(int value) => new() { Value = value, NpgsqlDbType = NpgsqlDbType.Integer };

    private static NpgsqlParameter Time(DateTimeOffset? value) =>
        new() { Value = (object?)value?.UtcDateTime ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };

    private static NpgsqlParameter Texts(IEnumerable<string?> values) =>
        new() { Value = values.Select(Clean).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };

    private static NpgsqlParameter Times(IEnumerable<DateTimeOffset> values) =>
        new() { Value = values.Select(v => v.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz };

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
}
