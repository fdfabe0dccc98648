using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace SandboxBroker.Storage;

/// <summary>Writes audit events and index rows. Callers await durability of what they wrote.</summary>
public interface IBrokerJournal
{
    Task WriteAsync(AuditEvent? audit, SandboxRow? sandbox = null, ClaimRow? claim = null);
}

/// <summary>
/// Group commit: every write waiting at the moment the writer loop wakes goes to Postgres in one
/// batch and one transaction, so many grains writing at once cost one round trip. The order of writes
/// per row is preserved (one loop, FIFO), which keeps each grain the single, ordered writer of its row.
/// </summary>
public sealed class PostgresBrokerJournal(NpgsqlDataSource dataSource, ILogger<PostgresBrokerJournal> logger)
    : BackgroundService, IBrokerJournal
{
    private const int MaxBatch = 512;

    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });

    private sealed record Pending(AuditEvent? Audit, SandboxRow? Sandbox, ClaimRow? Claim, TaskCompletionSource Done);

    public Task WriteAsync(AuditEvent? audit, SandboxRow? sandbox = null, ClaimRow? claim = null)
    {
        var pending = new Pending(audit, sandbox, claim, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(pending))
        {
            return Task.FromException(new ObjectDisposedException(nameof(PostgresBrokerJournal)));
        }
        return pending.Done.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<Pending>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }
            try
            {
                await FlushAsync(batch);
                foreach (var p in batch)
                {
                    p.Done.TrySetResult();
                }
            }
            catch (Exception e)
            {
                logger.LogError(e, "Journal batch of {Count} writes failed", batch.Count);
                foreach (var p in batch)
                {
                    p.Done.TrySetException(e);
                }
            }
            batch.Clear();
            if (stoppingToken.IsCancellationRequested && !_queue.Reader.TryPeek(out _))
            {
                break;
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    private async Task FlushAsync(List<Pending> batch)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var npgsqlBatch = new NpgsqlBatch(connection, transaction);
        foreach (var p in batch)
        {
            if (p.Sandbox is { } s)
            {
                npgsqlBatch.BatchCommands.Add(SandboxUpsert(s));
            }
            if (p.Claim is { } c)
            {
                npgsqlBatch.BatchCommands.Add(ClaimUpsert(c));
            }
            if (p.Audit is { } a)
            {
                npgsqlBatch.BatchCommands.Add(AuditInsert(a));
            }
        }
        if (npgsqlBatch.BatchCommands.Count > 0)
        {
            await npgsqlBatch.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
    }

    private static NpgsqlBatchCommand AuditInsert(AuditEvent a) => Command("""
        INSERT INTO broker_audit_log (occurred_at, entity_type, entity_id, event, from_state, to_state, actor, details)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
        """, a.OccurredAt, a.EntityType, a.EntityId, a.Event, a.FromState, a.ToState, a.Actor, a.DetailsJson);

    private static NpgsqlBatchCommand SandboxUpsert(SandboxRow s) => Command("""
        INSERT INTO broker_sandboxes (sandbox_id, pool, provider, status, name, external_id, tenant, owner, claim_key, created_at, updated_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (sandbox_id) DO UPDATE SET
            pool = EXCLUDED.pool, provider = EXCLUDED.provider, status = EXCLUDED.status, name = EXCLUDED.name,
            external_id = EXCLUDED.external_id, tenant = EXCLUDED.tenant, owner = EXCLUDED.owner,
            claim_key = EXCLUDED.claim_key, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
        WHERE broker_sandboxes.updated_at <= EXCLUDED.updated_at
        """, s.SandboxId, s.Pool, s.Provider, s.Status, s.Name, s.ExternalId, s.Tenant, s.Owner, s.ClaimKey, s.CreatedAt, s.UpdatedAt, s.ExpiresAt);

    private static NpgsqlBatchCommand ClaimUpsert(ClaimRow c) => Command("""
        INSERT INTO broker_claims (claim_key, tenant, owner, pool, sandbox_id, status, acquired_at, expires_at, last_activity_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (claim_key) DO UPDATE SET
            tenant = EXCLUDED.tenant, owner = EXCLUDED.owner, pool = EXCLUDED.pool, sandbox_id = EXCLUDED.sandbox_id,
            status = EXCLUDED.status, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at,
            last_activity_at = EXCLUDED.last_activity_at, updated_at = EXCLUDED.updated_at
        WHERE broker_claims.updated_at <= EXCLUDED.updated_at
        """, c.ClaimKey, c.Tenant, c.Owner, c.Pool, c.SandboxId, c.Status, c.AcquiredAt, c.ExpiresAt, c.LastActivityAt, c.UpdatedAt);

    private static NpgsqlBatchCommand Command(string sql, params object?[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(value switch
            {
                null => new NpgsqlParameter { Value = DBNull.Value }, // untyped: Postgres infers the column's type
                DateTimeOffset t => new NpgsqlParameter { Value = t.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz },
                _ => new NpgsqlParameter { Value = value },
            });
        }
        return command;
    }
}
