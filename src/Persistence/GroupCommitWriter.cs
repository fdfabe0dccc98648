using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SandboxBroker.Persistence;

/// <summary>
/// Group commit for grain state. Reads, writes and clears from every grain of the silo go through one queue; a loop
/// sends what has queued up as one <see cref="NpgsqlBatch"/>: one round trip and one (implicit) transaction.
/// Nothing waits for a batch to fill: an operation that finds a loop idle goes at once, and those that arrive
/// while the batches are in flight go together in the next one, so batches grow only with load
/// (<see cref="GroupCommitOptions.BatchesInFlight"/> loops, one batch in flight each).
/// <para>
/// Each write carries its own version check (an UPDATE of the row still at the grain's version, or an INSERT that
/// does nothing when a row exists): a write that matches no row is that grain's conflict and leaves its neighbours
/// alone. A write is acknowledged only once Postgres has answered the batch's Sync (its commit). A batch that fails
/// on a statement error is run again one operation at a time, so one bad write fails alone; a batch that fails on the
/// connection fails all its operations with the error: their outcome is unknown, and the grains drop their activations
/// and read back what was stored.
/// </para>
/// <para>
/// A write nobody waits on (<see cref="WriteOperation.CanWait"/>: a pool's spare being created, a deletion's
/// progress) does not start a batch of its own: it rides with the next one, or goes after
/// <see cref="GroupCommitOptions.MaxWait"/> when nothing else is written. At low load that is what keeps such writes from
/// costing a transaction each; at high load batches go all the time and it changes nothing.
/// </para>
/// </summary>
public sealed class GroupCommitWriter : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _serviceId;
    private readonly int _maxBatch;
    private readonly ILogger<GroupCommitWriter> _logger;
    private readonly StorageTelemetry _telemetry;
    private readonly Channel<StateOperation> _queue = Channel.CreateUnbounded<StateOperation>();
    private readonly Task[] _loops;

    /// <summary>Writes that can wait, until a batch takes them or <see cref="_maxWait"/> sends them.</summary>
    private readonly ConcurrentQueue<StateOperation> _waiting = new();
    private readonly TimeSpan _maxWait;
    private readonly TimeProvider _time;
    private int _sendWaitingScheduled;

    public GroupCommitWriter(NpgsqlDataSource dataSource, string serviceId, IOptions<GroupCommitOptions> options, ILogger<GroupCommitWriter> logger,
        StorageTelemetry telemetry, TimeProvider? time = null)
    {
        _maxWait = options.Value.MaxWait;
        _time = time ?? TimeProvider.System;
        _telemetry = telemetry;
        _dataSource = dataSource;
        _serviceId = serviceId;
        _maxBatch = Math.Max(1, options.Value.MaxBatch);
        _logger = logger;
        // Each loop has at most one batch in flight. A grain writes one change at a time (it awaits each), so with several
        // loops a grain's writes still reach Postgres in order.
        _loops = Enumerable.Range(0, Math.Max(1, options.Value.BatchesInFlight)).Select(_ => Task.Run(RunAsync)).ToArray();
    }

    /// <summary>Batches sent and operations carried, since start (for tests and figures).</summary>
    public (long Batches, long Operations) Counters => (Interlocked.Read(ref _batches), Interlocked.Read(ref _operations));

    private long _batches;
    private long _operations;

    public Task<StoredState?> ReadAsync(string stateName, string grainKey) =>
        Enqueue(new ReadOperation(stateName, grainKey));

    /// <summary>The new version, or null when the row was not at <see cref="WriteOperation.ExpectedVersion"/> (a conflict).</summary>
    public Task<int?> WriteAsync(WriteOperation write) => write.CanWait && _maxWait > TimeSpan.Zero ? EnqueueWaiting(write) : Enqueue(write);

    /// <summary>True when the row was deleted, false when it was not at the expected version (a conflict).</summary>
    public Task<bool> ClearAsync(ClearOperation clear) => Enqueue(clear);

    private Task<T> Enqueue<T>(StateOperation<T> operation)
    {
        if (!_queue.Writer.TryWrite(operation))
        {
            return Task.FromException<T>(new ObjectDisposedException(nameof(GroupCommitWriter), "the silo's grain storage is shutting down"));
        }
        return operation.Task;
    }

    private Task<T> EnqueueWaiting<T>(StateOperation<T> operation)
    {
        _waiting.Enqueue(operation);
        if (Interlocked.Exchange(ref _sendWaitingScheduled, 1) == 0)
        {
            _ = SendWaitingAfterMaxWait();
        }
        return operation.Task;
    }

    private async Task SendWaitingAfterMaxWait()
    {
        await Task.Delay(_maxWait, _time);
        // Cleared before the queue is emptied: a write that arrives meanwhile either goes now or schedules the next send.
        Volatile.Write(ref _sendWaitingScheduled, 0);
        SendWaiting();
    }

    /// <summary>Moves the waiting writes to the queue, so the next batch carries them.</summary>
    private void SendWaiting()
    {
        while (_waiting.TryDequeue(out var operation))
        {
            if (!_queue.Writer.TryWrite(operation))
            {
                operation.Fail(new ObjectDisposedException(nameof(GroupCommitWriter), "the silo's grain storage is shutting down"));
            }
        }
    }

    private async Task RunAsync()
    {
        var batch = new List<StateOperation>(_maxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < _maxBatch && _queue.Reader.TryRead(out var operation))
            {
                batch.Add(operation);
            }
            // The writes that can wait ride with this batch (after the queue's, which has operations that cannot).
            while (batch.Count < _maxBatch && _waiting.TryDequeue(out var waiting))
            {
                batch.Add(waiting);
            }
            await RunBatchAsync(batch);
            batch.Clear();
        }
    }

    private async Task RunBatchAsync(List<StateOperation> batch)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _operations, batch.Count);
        try
        {
            await ExecuteAsync(batch);
        }
        catch (PostgresException e) when (batch.Count > 1 && !IsConnectionLevel(e))
        {
            // One statement failed and the implicit transaction rolled back with it: nothing of the batch is stored.
            // Run each alone, so only the operation at fault fails.
            _logger.LogWarning("A batch of {Count} grain-state operations failed ({SqlState}: {Error}); running them one by one",
                batch.Count, e.SqlState, e.MessageText);
            _telemetry.Split();
            foreach (var operation in batch)
            {
                try
                {
                    await ExecuteAsync([operation]);
                }
                catch (Exception single)
                {
                    operation.Fail(single);
                }
            }
        }
        catch (Exception e)
        {
            _logger.LogWarning("A batch of {Count} grain-state operations failed: {Error}", batch.Count, e.Message);
            foreach (var operation in batch)
            {
                operation.Fail(e);
            }
        }
    }

    /// <summary>Runs the operations in one batch; completes them only after the batch's transaction has committed.</summary>
    private async Task ExecuteAsync(IReadOnlyList<StateOperation> operations)
    {
        using var activity = _telemetry.StartBatch(operations);
        var started = Stopwatch.GetTimestamp();
        try
        {
            await ExecuteBatchAsync(operations);
            _telemetry.Committed(operations.Count, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            _telemetry.Failed(operations.Count, Stopwatch.GetElapsedTime(started));
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    private async Task ExecuteBatchAsync(IReadOnlyList<StateOperation> operations)
    {
        var reads = operations.OfType<ReadOperation>().ToList();
        var changes = operations.Where(o => o is not ReadOperation).ToList();
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection);
        if (reads.Count > 0)
        {
            batch.BatchCommands.Add(StateCommands.Read(_serviceId, reads));
        }
        foreach (var change in changes)
        {
            batch.BatchCommands.Add(change switch
            {
                WriteOperation write => StateCommands.Write(_serviceId, write),
                ClearOperation clear => StateCommands.Clear(_serviceId, clear),
                _ => throw new InvalidOperationException(change.GetType().Name),
            });
        }

        var found = new Dictionary<(string, string), StoredState>();
        var outcomes = new List<int?>(changes.Count);
        var reader = await batch.ExecuteReaderAsync();
        await using (reader)
        {
            if (reads.Count > 0)
            {
                while (await reader.ReadAsync())
                {
                    found[(reader.GetString(0), reader.GetString(1))] = new StoredState(reader.GetInt32(2), reader.GetFieldValue<byte[]>(3));
                }
                await reader.NextResultAsync();
            }
            foreach (var _ in changes)
            {
                outcomes.Add(await reader.ReadAsync() ? reader.GetInt32(0) : null);
                await reader.NextResultAsync();
            }
        }
        // The reader is closed: Postgres has answered the Sync, so the implicit transaction has committed.

        foreach (var read in reads)
        {
            read.Complete(found.GetValueOrDefault((read.StateName, read.GrainKey)));
        }
        for (var i = 0; i < changes.Count; i++)
        {
            switch (changes[i])
            {
                case WriteOperation write:
                    if (outcomes[i] is null)
                    {
                        _telemetry.Conflict("write");
                    }
                    write.Complete(outcomes[i]);
                    break;
                case ClearOperation clear:
                    if (outcomes[i] is null)
                    {
                        _telemetry.Conflict("clear");
                    }
                    clear.Complete(outcomes[i] is not null);
                    break;
            }
        }
    }

    /// <summary>Errors after which the transaction's outcome or the server itself is in doubt (not one statement's fault).</summary>
    private static bool IsConnectionLevel(PostgresException e) =>
        e.SqlState.StartsWith("08", StringComparison.Ordinal) || e.SqlState.StartsWith("57P", StringComparison.Ordinal)
        || e.SqlState.StartsWith("53", StringComparison.Ordinal) || e.SqlState.StartsWith("58", StringComparison.Ordinal);

    public async ValueTask DisposeAsync()
    {
        SendWaiting(); // acknowledged only once committed: the writes that were waiting go before the loops stop
        _queue.Writer.TryComplete();
        await Task.WhenAll(_loops);
    }
}
