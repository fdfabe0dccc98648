using Npgsql;

namespace SandboxBroker.Persistence;

/// <summary>
/// One batch of the <see cref="GroupCommitWriter"/>: its operations as one <see cref="NpgsqlBatch"/> (one round trip, one
/// implicit transaction), each completed only once Postgres has answered the batch's Sync, that is once it committed.
/// </summary>
internal static class StateBatch
{
    public static async Task ExecuteAsync(NpgsqlDataSource dataSource, string serviceId, StorageTelemetry telemetry, IReadOnlyList<StateOperation> operations)
    {
        var reads = operations.OfType<ReadOperation>().ToList();
        // Writes and clears; a joint write's two halves follow one another, each checked to have written.
        var changes = new List<(StateOperation Operation, bool Joint)>();
        foreach (var operation in operations)
        {
            switch (operation)
            {
                case ReadOperation:
                    break;
                case JointWrite joint:
                    changes.Add((joint.Held, true));
                    changes.Add((joint.Completing, true));
                    break;
                default:
                    changes.Add((operation, false));
                    break;
            }
        }
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection);
        if (reads.Count > 0)
        {
            batch.BatchCommands.Add(StateCommands.Read(serviceId, reads));
        }
        foreach (var (change, joint) in changes)
        {
            batch.BatchCommands.Add(change switch
            {
                WriteOperation write => StateCommands.Write(serviceId, write, joint),
                ClearOperation clear => StateCommands.Clear(serviceId, clear),
                _ => throw new InvalidOperationException(change.GetType().Name),
            });
        }

        var found = new Dictionary<(string, string), StoredState>();
        var outcomes = new List<(int Version, ulong Transaction)?>(changes.Count);
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
                // A clear answers its version only; a write also its transaction's id.
                outcomes.Add(await reader.ReadAsync() ? (reader.GetInt32(0), reader.FieldCount > 1 ? reader.GetFieldValue<ulong>(1) : 0) : null);
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
            switch (changes[i].Operation)
            {
                case WriteOperation write:
                    if (outcomes[i] is null)
                    {
                        telemetry.Conflict("write");
                    }
                    write.Transaction = outcomes[i]?.Transaction ?? 0;
                    write.Complete(outcomes[i]?.Version);
                    break;
                case ClearOperation clear:
                    if (outcomes[i] is null)
                    {
                        telemetry.Conflict("clear");
                    }
                    clear.Complete(outcomes[i] is not null);
                    break;
            }
        }
    }
}
