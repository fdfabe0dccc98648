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
/// <para>
/// A joint write (<see cref="IJointWrites"/>: a lease and its sandbox's `leased` state) is held until its partner's write
/// arrives, and the two then go as one operation whose statements each fail when they match no row: a conflict on either
/// rolls back both.
/// </para>
/// </summary>
public sealed class GroupCommitWriter : IAsyncDisposable, IJointWrites
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

    /// <summary>The first halves of joint writes, until their partners take them along (or they are released or withdrawn).</summary>
    private readonly HeldWrites _held = new();

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
    public Task<int?> WriteAsync(WriteOperation write) => write.Joint switch
    {
        { Holds: true } joint => _held.Hold(joint.Key, write),
        { } joint => _held.Take(joint.Key) is { } held
            ? Send(new JointWrite(held, write)).Completing.Task
            : Task.FromException<int?>(new JointWriteWithdrawnException(joint.Key)),
        null when write.CanWait && _maxWait > TimeSpan.Zero => EnqueueWaiting(write),
        null => Enqueue(write),
    };

    public bool Holds(string key) => _held.Holds(key);

    public Task WhenHeld(string key) => _held.WhenHeld(key);

    public bool Release(string key)
    {
        if (_held.Take(key) is not { } held)
        {
            return false;
        }
        Send(held);
        return true;
    }

    public bool Withdraw(string key)
    {
        if (_held.Take(key) is not { } held)
        {
            return false;
        }
        held.Fail(new JointWriteWithdrawnException(key));
        return true;
    }

    /// <summary>True when the row was deleted, false when it was not at the expected version (a conflict).</summary>
    public Task<bool> ClearAsync(ClearOperation clear) => Enqueue(clear);

    private Task<T> Enqueue<T>(StateOperation<T> operation) => Send(operation).Task;

    /// <summary>Queues the operation for the next batch (or fails it when the writer is stopping).</summary>
    private TOperation Send<TOperation>(TOperation operation) where TOperation : StateOperation
    {
        if (!_queue.Writer.TryWrite(operation))
        {
            operation.Fail(new ObjectDisposedException(nameof(GroupCommitWriter), "the silo's grain storage is shutting down"));
        }
        return operation;
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
        Interlocked.Add(ref _operations, batch.Sum(o => o is JointWrite ? 2 : 1));
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
                    Settle(operation, single);
                }
            }
        }
        catch (Exception e)
        {
            _logger.LogWarning("A batch of {Count} grain-state operations failed: {Error}", batch.Count, e.Message);
            foreach (var operation in batch)
            {
                Settle(operation, e);
            }
        }
    }

    /// <summary>Answers an operation whose batch failed: a joint write that failed on its own version check is a conflict
    /// for both grains, like any write's; anything else is the error.</summary>
    private void Settle(StateOperation operation, Exception error)
    {
        if (operation is JointWrite joint && error is PostgresException { SqlState: StateCommands.JointConflictState })
        {
            _telemetry.Conflict("joint write");
            joint.Conflict();
            return;
        }
        operation.Fail(error);
    }

    /// <summary>Runs the operations in one batch; completes them only after the batch's transaction has committed.</summary>
    private async Task ExecuteAsync(IReadOnlyList<StateOperation> operations)
    {
        using var activity = _telemetry.StartBatch(operations);
        var started = Stopwatch.GetTimestamp();
        try
        {
            await StateBatch.ExecuteAsync(_dataSource, _serviceId, _telemetry, operations);
            _telemetry.Committed(operations.Count, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            _telemetry.Failed(operations.Count, Stopwatch.GetElapsedTime(started));
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    /// <summary>Errors after which the transaction's outcome or the server itself is in doubt (not one statement's fault).</summary>
    private static bool IsConnectionLevel(PostgresException e) =>
        e.SqlState.StartsWith("08", StringComparison.Ordinal) || e.SqlState.StartsWith("57P", StringComparison.Ordinal)
        || e.SqlState.StartsWith("53", StringComparison.Ordinal) || e.SqlState.StartsWith("58", StringComparison.Ordinal);

    public async ValueTask DisposeAsync()
    {
        SendWaiting(); // acknowledged only once committed: the writes that were waiting go before the loops stop
        _held.FailAll(new JointWriteWithdrawnException("(the silo's grain storage is shutting down)"));
        _queue.Writer.TryComplete();
        await Task.WhenAll(_loops);
    }
}
