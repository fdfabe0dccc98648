using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;

namespace SandboxBroker.Tests.Faults;

/// <summary>
/// Reads both sides <see cref="IndexAuditChecker"/> compares, through surfaces that stay put while the grains' persistence
/// changes: the broker's own tables (broker_audit_log, broker_claims, broker_sandboxes; never the grain state tables) and
/// the gateway's REST API, whose GET /v1/claims/{key} and GET /v1/sandboxes/{id} answer from the grains. Differences that
/// are work still settling (a deletion finishing, its index row written just after the grain's state) are read again for
/// a bounded time before they are reported.
/// </summary>
public sealed class IndexAuditCheck(string connectionString, HttpClient admin, Action<string> log)
{
    private static readonly TimeSpan RetryPause = TimeSpan.FromSeconds(3);

    // The gateway and silos share the machine's cores with this test: a few reads at a time are plenty.
    private const int Parallelism = 4;

    /// <summary>Runs the check over the storm's keys and every sandbox id the history or the index knows; the problems, one line each.</summary>
    public async Task<List<string>> RunAsync(IReadOnlyList<Operation> operations, IReadOnlyCollection<string> keys, TimeSpan settle)
    {
        var clock = Stopwatch.StartNew();
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var ids = operations.Where(o => o.SandboxId is not null).Select(o => o.SandboxId!).ToHashSet(StringComparer.Ordinal);
        ids.UnionWith(await IndexedSandboxIdsAsync(dataSource, keys));
        var (acquired, released) = IndexAuditChecker.Acknowledged(operations);
        var snapshot = await ReadAsync(dataSource, keys, ids);
        var findings = IndexAuditChecker.Check(operations, snapshot);
        log($"audit and index, first read ({clock.Elapsed.TotalSeconds:F1}s): {keys.Count} keys, {ids.Count} sandbox ids, " +
            $"{acquired.Count} acknowledged new leases, {released.Count} acknowledged ended leases, {snapshot.LeaseEvents.Count} lease events; " +
            $"{findings.Count} finding(s){ByKind(findings)}");
        var reads = 1;
        var settling = Stopwatch.StartNew();
        while (findings.Count > 0 && settling.Elapsed + RetryPause < settle)
        {
            await Task.Delay(RetryPause);
            // Only what differed is read again: the rest agreed once the cluster had settled.
            var againKeys = findings.Where(f => f.Key is not null).Select(f => f.Key!).ToHashSet(StringComparer.Ordinal);
            var againIds = findings.Where(f => f.SandboxId is not null).Select(f => f.SandboxId!).ToHashSet(StringComparer.Ordinal);
            findings = IndexAuditChecker.Check(operations, await ReadAsync(dataSource, againKeys, againIds));
            reads++;
        }
        log($"audit and index checked in {clock.Elapsed.TotalSeconds:F1}s ({reads} read(s)): {findings.Count} finding(s){ByKind(findings)}");
        return findings.Select(f => f.ToString()).ToList();
    }

    private static string ByKind(List<IndexFinding> findings) =>
        findings.Count == 0 ? "" : ": " + string.Join(", ", findings.GroupBy(f => f.Kind).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"));

    /// <summary>The ids the index knows: every sandbox row (warm ones the storm never saw too) and the storm's claims' sandboxes.</summary>
    /// <summary>The storm acts with the admin token, so its keys are the admin tenant's: the index and audit log know them by claim id.</summary>
    private static string ClaimIdOf(string key) => ClaimId.Of("admin", key);

    private static string KeyOf(string claimId) => ClaimId.Parse(claimId).ClaimKey;

    private static async Task<HashSet<string>> IndexedSandboxIdsAsync(NpgsqlDataSource dataSource, IReadOnlyCollection<string> keys)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var command = dataSource.CreateCommand("""
            SELECT sandbox_id FROM broker_sandboxes
            UNION
            SELECT sandbox_id FROM broker_claims WHERE claim_key = ANY($1) AND sandbox_id IS NOT NULL
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = keys.Select(ClaimIdOf).ToArray() });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetString(0));
        }
        return ids;
    }

    private async Task<IndexSnapshot> ReadAsync(NpgsqlDataSource dataSource, IReadOnlyCollection<string> keys, IReadOnlyCollection<string> ids)
    {
        // The grains first, then the tables: a change landing in between shows as a difference, which the next read settles.
        var claimGrains = new Dictionary<string, ActiveLease?>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (key, _) =>
        {
            var lease = await ProcessFaultTests.GetJsonAsync(admin, $"/v1/claims/{Uri.EscapeDataString(key)}");
            var active = lease is { } l
                ? new ActiveLease(l.GetProperty("sandbox_id").GetString()!, l.TryGetProperty("lease_number", out var n) && n.ValueKind == JsonValueKind.Number ? n.GetInt64() : null)
                : null;
            lock (claimGrains)
            {
                claimGrains[key] = active;
            }
        });
        var sandboxGrains = new Dictionary<string, string?>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (id, _) =>
        {
            var sandbox = await ProcessFaultTests.GetJsonAsync(admin, $"/v1/sandboxes/{Uri.EscapeDataString(id)}");
            var status = sandbox?.GetProperty("status").GetString();
            lock (sandboxGrains)
            {
                sandboxGrains[id] = status;
            }
        });

        var keyArray = keys.ToArray();
        var claimIds = keys.Select(ClaimIdOf).ToArray();
        var idArray = ids.ToArray();
        var leaseEvents = new List<LeaseAuditRow>();
        await using (var command = dataSource.CreateCommand("""
                         SELECT entity_id, event, details->>'sandbox_id', details->>'lease' FROM broker_audit_log
                         WHERE entity_type = 'claim' AND entity_id = ANY($1) AND event IN ('lease.acquired', 'lease.released', 'lease.expired')
                         """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = claimIds });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                leaseEvents.Add(new LeaseAuditRow(KeyOf(reader.GetString(0)), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
                    !reader.IsDBNull(3) && long.TryParse(reader.GetString(3), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var lease) ? lease : null));
            }
        }
        var newestAudit = new Dictionary<string, SandboxAuditRow>(StringComparer.Ordinal);
        // Newest by the time the grain stamped it, then by insertion: a batch commits many rows at one instant.
        await using (var command = dataSource.CreateCommand("""
                         SELECT DISTINCT ON (entity_id) entity_id, event, to_state FROM broker_audit_log
                         WHERE entity_type = 'sandbox' AND entity_id = ANY($1)
                         ORDER BY entity_id, occurred_at DESC, id DESC
                         """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = idArray });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                newestAudit[reader.GetString(0)] = new SandboxAuditRow(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2));
            }
        }
        var claimIndex = new Dictionary<string, ClaimIndexRow>(StringComparer.Ordinal);
        await using (var command = dataSource.CreateCommand("SELECT claim_key, status, sandbox_id FROM broker_claims WHERE claim_key = ANY($1)"))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = claimIds });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                claimIndex[KeyOf(reader.GetString(0))] = new ClaimIndexRow(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2));
            }
        }
        var sandboxIndex = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var command = dataSource.CreateCommand("SELECT sandbox_id, status FROM broker_sandboxes WHERE sandbox_id = ANY($1)"))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = idArray });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                sandboxIndex[reader.GetString(0)] = reader.GetString(1);
            }
        }
        return new IndexSnapshot(keyArray, idArray, leaseEvents, newestAudit, claimIndex, sandboxIndex, claimGrains, sandboxGrains);
    }
}
