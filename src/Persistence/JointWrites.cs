namespace SandboxBroker.Persistence;

/// <summary>
/// Joint writes: two grains' writes stored in one transaction or not at all. A warm lease is the case: the claim's
/// write (the lease naming the sandbox) and the sandbox's `leased` write. Stored one after the other, they cost two
/// commits on the acquire's path, and the lease had to go first so that a crash between them left a lease naming its
/// sandbox (which the claim's next activation finishes), never a sandbox leased to nobody. Stored together, a crash
/// leaves both or neither.
/// <para>
/// The first write (<see cref="JointWriteMark.Holds"/>) is held in the silo's writer, unsent; the second, from a grain
/// of the same silo, takes it along into its batch. The writer is per silo, so a partner on another silo never finds
/// the held write: it asks <see cref="Holds"/> first, and the holder then sends its write alone
/// (<see cref="Release"/>) and goes on the sequential way. A holder whose partner failed before writing takes its write
/// back (<see cref="Withdraw"/>): nothing was stored, and a partner's write arriving later fails at once.
/// </para>
/// </summary>
public interface IJointWrites
{
    /// <summary>A write waiting for its partner under <paramref name="key"/> is held in this silo's writer.</summary>
    bool Holds(string key);

    /// <summary>
    /// Completes once a write is held under <paramref name="key"/>. A grain's storage call reaches the writer a turn after
    /// the grain asks for the write, so the holder waits for this (or for the write's failure) before calling its partner.
    /// </summary>
    Task WhenHeld(string key);

    /// <summary>Sends the write held under <paramref name="key"/> alone. False when none is (its partner took it along).</summary>
    bool Release(string key);

    /// <summary>
    /// Fails the write held under <paramref name="key"/> with <see cref="JointWriteWithdrawnException"/>, storing nothing.
    /// False when none is held: its partner took it along, and the two are stored or not together.
    /// </summary>
    bool Withdraw(string key);
}

/// <summary>Marks a state write as one half of a joint write (<see cref="IJointWrites"/>).</summary>
/// <param name="Key">Names the pair; unique while it is held (a claim's id and lease number).</param>
/// <param name="Holds">True for the write that waits for its partner; false for the partner, which takes it along.</param>
public sealed record JointWriteMark(string Key, bool Holds)
{
    /// <summary>The mark in <paramref name="slot"/>, which is emptied: a mark applies to one write.</summary>
    public static JointWriteMark? Take(ref JointWriteMark? slot)
    {
        var mark = slot;
        slot = null;
        return mark;
    }
}

/// <summary>A joint write's held half was taken back, or was never held here: nothing of it was stored.</summary>
public sealed class JointWriteWithdrawnException(string key)
    : Exception($"the joint write '{key}' was withdrawn (or is held on another silo); nothing was stored")
{
    public string Key { get; } = key;
}

/// <summary>The two halves of a joint write, queued as one operation: their statements go in the same batch, and each
/// raises an error when it matches no row, so a conflict on either rolls back both.</summary>
internal sealed class JointWrite(WriteOperation held, WriteOperation completing) : StateOperation
{
    public WriteOperation Held { get; } = held;
    public WriteOperation Completing { get; } = completing;

    /// <summary>Either half was not at its expected version: neither was stored, and both grains see a conflict.</summary>
    public void Conflict()
    {
        Held.Complete(null);
        Completing.Complete(null);
    }

    public override void Fail(Exception error)
    {
        Held.Fail(error);
        Completing.Fail(error);
    }
}

/// <summary>The first halves of joint writes held in a writer, by key.</summary>
internal sealed class HeldWrites
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, WriteOperation> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TaskCompletionSource> _awaited = new(StringComparer.Ordinal);

    public Task<int?> Hold(string key, WriteOperation write)
    {
        TaskCompletionSource? awaited;
        lock (_gate)
        {
            if (!_held.TryAdd(key, write))
            {
                return Task.FromException<int?>(new InvalidOperationException($"a write is already held for the joint write '{key}'"));
            }
            _awaited.Remove(key, out awaited);
        }
        awaited?.TrySetResult();
        return write.Task;
    }

    public Task WhenHeld(string key)
    {
        lock (_gate)
        {
            if (_held.ContainsKey(key))
            {
                return Task.CompletedTask;
            }
            if (!_awaited.TryGetValue(key, out var awaited))
            {
                awaited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _awaited[key] = awaited;
            }
            return awaited.Task;
        }
    }

    /// <summary>The write held under the key, no longer held (nor awaited); null when none is.</summary>
    public WriteOperation? Take(string key)
    {
        lock (_gate)
        {
            _awaited.Remove(key);
            return _held.Remove(key, out var held) ? held : null;
        }
    }

    public bool Holds(string key)
    {
        lock (_gate)
        {
            return _held.ContainsKey(key);
        }
    }

    /// <summary>Fails every held write (nothing of them was stored).</summary>
    public void FailAll(Exception error)
    {
        List<WriteOperation> held;
        lock (_gate)
        {
            held = [.. _held.Values];
            _held.Clear();
        }
        foreach (var write in held)
        {
            write.Fail(error);
        }
    }
}
