using Npgsql;
using NpgsqlTypes;

namespace SandboxBroker.Storage;

/// <summary>Where a webhook delivery is: waiting or being processed (received), done (processed), left alone (ignored), or given up on (failed).</summary>
public static class DeliveryStatus
{
    public const string Received = "received";
    public const string Processed = "processed";
    public const string Ignored = "ignored";
    public const string Failed = "failed";

    public static readonly IReadOnlyList<string> All = [Received, Processed, Ignored, Failed];
}

/// <summary>A delivery as the admin view shows it (never the payload).</summary>
public sealed record WebhookDelivery(
    string DeliveryId,
    string Event,
    string? Action,
    string? Repository,
    DateTimeOffset ReceivedAt,
    string Status,
    int Attempts,
    DateTimeOffset? ProcessedAt,
    string? Outcome,
    string? Error,
    int Redeliveries,
    DateTimeOffset? LastSeenAt);

/// <summary>A delivery to record: status <c>received</c> (to process) or <c>ignored</c> (with the reason as outcome).</summary>
public sealed record NewDelivery(
    string DeliveryId, string Event, string? Action, string? Repository, byte[] Payload, string Status, string? Outcome = null, byte[]? PayloadSha256 = null);

/// <summary>What recording a delivery did: a new row, a failed one queued again, or a duplicate left as it was.</summary>
public enum RecordKind
{
    New,
    Requeued,
    Duplicate,
}

/// <summary><paramref name="DuplicateOf"/>: the delivery id already recorded with the same payload under another id.</summary>
public sealed record RecordResult(RecordKind Kind, string Status, string? DuplicateOf = null);

/// <summary>A delivery a processor holds (leased to it) and must mark.</summary>
public sealed record ClaimedDelivery(string DeliveryId, string Event, string? Action, string? Repository, DateTimeOffset ReceivedAt, int Attempts, byte[] Payload);

/// <summary>
/// broker_webhook_deliveries: the durable inbox of the GitHub webhook. A delivery id is recorded once; processors take
/// waiting rows with <c>FOR UPDATE SKIP LOCKED</c> and hold them under a lease (locked_until, locked_by), so several
/// gateways share the work and never hold one row at once; a lease that runs out (a crashed processor) frees the row.
/// </summary>
public sealed class WebhookDeliveryStore(NpgsqlDataSource dataSource, TimeProvider time)
{
    private const string Columns =
        "delivery_id, event, action, repository, received_at, status, attempts, processed_at, outcome, error, redeliveries, last_seen_at";

    /// <summary>
    /// Records a delivery unless its id, or its payload (by SHA-256, under another id), is known. A known delivery that
    /// failed is queued again (a redelivery is the way to retry it); any other known one is a duplicate and changes
    /// nothing but its redelivery count.
    /// </summary>
    public async Task<RecordResult> RecordAsync(NewDelivery delivery, CancellationToken ct)
    {
        var now = time.GetUtcNow().UtcDateTime;
        for (var attempt = 0; ; attempt++)
        {
            await using (var insert = dataSource.CreateCommand("""
                INSERT INTO broker_webhook_deliveries (delivery_id, event, action, repository, received_at, status, outcome, payload, last_seen_at, payload_sha256)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5, $9)
                ON CONFLICT DO NOTHING
                """))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = delivery.DeliveryId });
                insert.Parameters.Add(new NpgsqlParameter { Value = delivery.Event });
                insert.Parameters.Add(Text(delivery.Action));
                insert.Parameters.Add(Text(delivery.Repository));
                insert.Parameters.Add(new NpgsqlParameter { Value = now });
                insert.Parameters.Add(new NpgsqlParameter { Value = delivery.Status });
                insert.Parameters.Add(Text(delivery.Outcome));
                insert.Parameters.Add(new NpgsqlParameter { Value = delivery.Payload, NpgsqlDbType = NpgsqlDbType.Bytea });
                insert.Parameters.Add(Hash(delivery.PayloadSha256));
                if (await insert.ExecuteNonQueryAsync(ct) == 1)
                {
                    return new RecordResult(RecordKind.New, delivery.Status);
                }
            }
            // Known: the row lock serializes concurrent redeliveries, so a failed row is queued again exactly once.
            await using var seen = dataSource.CreateCommand("""
                WITH old AS (
                    SELECT delivery_id, status FROM broker_webhook_deliveries
                    WHERE delivery_id = $1 OR ($3::bytea IS NOT NULL AND payload_sha256 = $3)
                    ORDER BY delivery_id = $1 DESC LIMIT 1
                    FOR UPDATE)
                UPDATE broker_webhook_deliveries d SET
                    redeliveries = d.redeliveries + 1,
                    last_seen_at = $2,
                    status       = CASE WHEN old.status = 'failed' THEN 'received' ELSE d.status END,
                    attempts     = CASE WHEN old.status = 'failed' THEN 0 ELSE d.attempts END,
                    locked_until = CASE WHEN old.status = 'failed' THEN NULL ELSE d.locked_until END,
                    locked_by    = CASE WHEN old.status = 'failed' THEN NULL ELSE d.locked_by END
                FROM old WHERE d.delivery_id = old.delivery_id
                RETURNING old.status, d.status, d.delivery_id
                """);
            seen.Parameters.Add(new NpgsqlParameter { Value = delivery.DeliveryId });
            seen.Parameters.Add(new NpgsqlParameter { Value = now });
            seen.Parameters.Add(Hash(delivery.PayloadSha256));
            await using var reader = await seen.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct))
            {
                var before = reader.GetString(0);
                var after = reader.GetString(1);
                var original = reader.GetString(2);
                return new RecordResult(before == DeliveryStatus.Failed ? RecordKind.Requeued : RecordKind.Duplicate, after,
                    original == delivery.DeliveryId ? null : original);
            }
            if (attempt >= 2)
            {
                throw new InvalidOperationException($"delivery {delivery.DeliveryId} neither inserts nor exists");
            }
            // Pruned between the two statements: insert again.
        }
    }

    /// <summary>Takes up to <paramref name="limit"/> waiting deliveries, oldest first, leased to <paramref name="worker"/>; counts an attempt on each.</summary>
    public async Task<IReadOnlyList<ClaimedDelivery>> ClaimBatchAsync(string worker, int limit, TimeSpan lease, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await using var command = dataSource.CreateCommand("""
            UPDATE broker_webhook_deliveries d SET locked_until = $2, locked_by = $3, attempts = d.attempts + 1
            WHERE d.delivery_id IN (
                SELECT delivery_id FROM broker_webhook_deliveries
                WHERE status = 'received' AND (locked_until IS NULL OR locked_until <= $1)
                ORDER BY received_at, delivery_id
                LIMIT $4
                FOR UPDATE SKIP LOCKED)
            RETURNING d.delivery_id, d.event, d.action, d.repository, d.received_at, d.attempts, d.payload
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = now.UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter { Value = (now + lease).UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter { Value = worker });
        command.Parameters.Add(new NpgsqlParameter { Value = limit });
        var claimed = new List<ClaimedDelivery>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            claimed.Add(new ClaimedDelivery(reader.GetString(0), reader.GetString(1), NullableString(reader, 2), NullableString(reader, 3),
                reader.GetFieldValue<DateTimeOffset>(4), reader.GetInt32(5), reader.GetFieldValue<byte[]>(6)));
        }
        return claimed.OrderBy(c => c.ReceivedAt).ThenBy(c => c.DeliveryId, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Marks a held delivery processed, ignored or failed. False when this worker no longer holds it (its lease ran
    /// out and another took it): that one marks it.
    /// </summary>
    public async Task<bool> CompleteAsync(string deliveryId, string worker, string status, string? outcome, string? error, CancellationToken ct)
    {
        if (status == DeliveryStatus.Received)
        {
            throw new ArgumentException("a delivery is completed as processed, ignored or failed", nameof(status));
        }
        await using var command = dataSource.CreateCommand("""
            UPDATE broker_webhook_deliveries SET status = $3, processed_at = $4, outcome = $5, error = $6, locked_until = NULL, locked_by = NULL
            WHERE delivery_id = $1 AND locked_by = $2 AND status = 'received'
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = deliveryId });
        command.Parameters.Add(new NpgsqlParameter { Value = worker });
        command.Parameters.Add(new NpgsqlParameter { Value = status });
        command.Parameters.Add(new NpgsqlParameter { Value = time.GetUtcNow().UtcDateTime });
        command.Parameters.Add(Text(outcome));
        command.Parameters.Add(Text(error));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Gives a held delivery back to wait until <paramref name="retryAt"/> (a transient failure), keeping the error.</summary>
    public async Task<bool> PostponeAsync(string deliveryId, string worker, DateTimeOffset retryAt, string error, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE broker_webhook_deliveries SET locked_until = $3, locked_by = NULL, error = $4
            WHERE delivery_id = $1 AND locked_by = $2 AND status = 'received'
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = deliveryId });
        command.Parameters.Add(new NpgsqlParameter { Value = worker });
        command.Parameters.Add(new NpgsqlParameter { Value = retryAt.UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter { Value = error });
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Deliveries, newest first, optionally of one status.</summary>
    public async Task<IReadOnlyList<WebhookDelivery>> ListAsync(string? status, int limit, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT {Columns} FROM broker_webhook_deliveries
            WHERE ($1::text IS NULL OR status = $1)
            ORDER BY received_at DESC, delivery_id DESC
            LIMIT $2
            """);
        command.Parameters.Add(Text(status));
        command.Parameters.Add(new NpgsqlParameter { Value = limit });
        var rows = new List<WebhookDelivery>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(Read(reader));
        }
        return rows;
    }

    public async Task<WebhookDelivery?> GetAsync(string deliveryId, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand($"SELECT {Columns} FROM broker_webhook_deliveries WHERE delivery_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = deliveryId });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    /// <summary>
    /// Queues a failed or ignored delivery again (attempts start over). Answers the row after the call (unchanged when it
    /// was received or processed), or null when the id is unknown.
    /// </summary>
    public async Task<WebhookDelivery?> RetryAsync(string deliveryId, CancellationToken ct)
    {
        await using (var command = dataSource.CreateCommand("""
            UPDATE broker_webhook_deliveries SET status = 'received', attempts = 0, locked_until = NULL, locked_by = NULL
            WHERE delivery_id = $1 AND status IN ('failed', 'ignored')
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = deliveryId });
            await command.ExecuteNonQueryAsync(ct);
        }
        return await GetAsync(deliveryId, ct);
    }

    /// <summary>Deletes finished deliveries first received before <paramref name="cutoff"/>; waiting ones are kept whatever their age.</summary>
    public async Task<int> PruneAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            DELETE FROM broker_webhook_deliveries WHERE received_at < $1 AND status <> 'received'
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = cutoff.UtcDateTime });
        return await command.ExecuteNonQueryAsync(ct);
    }

    private static WebhookDelivery Read(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetString(1), NullableString(r, 2), NullableString(r, 3), r.GetFieldValue<DateTimeOffset>(4), r.GetString(5),
        r.GetInt32(6), r.IsDBNull(7) ? null : r.GetFieldValue<DateTimeOffset>(7), NullableString(r, 8), NullableString(r, 9),
        r.GetInt32(10), r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11));

    private static string? NullableString(NpgsqlDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : r.GetString(ordinal);

    private static NpgsqlParameter Hash(byte[]? value) =>
        new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bytea };

    private static NpgsqlParameter Text(string? value) =>
        new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };
}
