using System.Globalization;

namespace SandboxBroker.Storage;

/// <summary>
/// A Postgres snapshot (<c>pg_current_snapshot()</c>): which transactions had committed when a statement read. A change
/// whose transaction id (<c>pg_current_xact_id()</c>) it <see cref="Includes"/> was seen by that statement; any other was not.
/// The pool uses it to tell a status notice already counted by its last recount from one that came after.
/// </summary>
public sealed record CommitSnapshot(ulong Xmin, ulong Xmax, IReadOnlySet<ulong> InProgress)
{
    /// <summary>The transaction had committed before the snapshot was taken. 0 (not known) is never included.</summary>
    public bool Includes(ulong transaction) =>
        transaction != 0 && (transaction < Xmin || (transaction < Xmax && !InProgress.Contains(transaction)));

    /// <summary>Parses the text form, <c>xmin:xmax:xip1,xip2,...</c>.</summary>
    public static CommitSnapshot Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 3)
        {
            throw new FormatException($"not a pg_snapshot: '{text}'");
        }
        var inProgress = parts[2].Length == 0
            ? []
            : parts[2].Split(',').Select(x => ulong.Parse(x, NumberStyles.None, CultureInfo.InvariantCulture)).ToHashSet();
        return new CommitSnapshot(ulong.Parse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture),
            ulong.Parse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture), inProgress);
    }
}
