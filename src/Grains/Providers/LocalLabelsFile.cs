using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace SandboxBroker.Grains.Providers;

/// <summary>
/// The labels set after a local sandbox's create (a lease's claim key), in <c>labels.jsonl</c> beside its metadata: one
/// JSON object per record, each record appended and beginning with a newline, a later record's labels overriding an
/// earlier one's.
/// <para>
/// The create makes the file, empty, so a relabel on a lease's path is an open of a file that is there and a write at its
/// end: no existence check, no read, no parse and no new file, which were most of the relabel's cost (7 % of the silo's
/// CPU at 1,000 new leases a second). A crash can cut the last record short: a record that does not parse is ignored, and
/// the newline that begins the next one keeps that one whole. Sandboxes created before this file existed have their
/// labels in <c>labels.json</c>, one object, read when there is no <c>labels.jsonl</c> and moved into it by their first
/// relabel. So a sandbox reads one file: a lease's recheck of a pooled sandbox reads its labels, and a missing file costs
/// an exception.
/// </para>
/// </summary>
internal sealed class LocalLabelsFile(ILogger logger)
{
    /// <summary>Not indented: a record is one line.</summary>
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private const string FileName = "labels.jsonl";
    private const string LegacyFileName = "labels.json";

    /// <summary>
    /// Makes the file empty: done by the create, so a relabel finds it, and so a create over a delete that was interrupted
    /// after the metadata went does not inherit the labels it left.
    /// </summary>
    public static void Reset(string directory)
    {
        File.WriteAllBytes(Path.Combine(directory, FileName), []);
        File.Delete(Path.Combine(directory, LegacyFileName));
    }

    /// <summary>Removes the files; the delete's first step, so a relabel of a sandbox being deleted finds none.</summary>
    public static void Remove(string directory)
    {
        File.Delete(Path.Combine(directory, FileName));
        File.Delete(Path.Combine(directory, LegacyFileName));
    }

    /// <summary>Appends a record; false when there is no file (no sandbox, or one created before the file existed).</summary>
    public bool TryAdd(string directory, IReadOnlyDictionary<string, string> labels)
    {
        try
        {
            Append(directory, labels, FileMode.Open);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Appends a record to a new file, for a sandbox created before the file existed: the labels of its
    /// <c>labels.json</c> go first, and that file goes, so from now on one file holds them all.
    /// </summary>
    public void Add(string directory, IReadOnlyDictionary<string, string> labels)
    {
        if (ReadLegacy(directory) is { } legacy)
        {
            Append(directory, legacy, FileMode.OpenOrCreate);
        }
        Append(directory, labels, FileMode.OpenOrCreate);
        File.Delete(Path.Combine(directory, LegacyFileName));
    }

    /// <summary>The labels set since the create; null when none were (or none can be read).</summary>
    public Dictionary<string, string>? Read(string directory)
    {
        // Only a sandbox created before the file existed, and not relabelled since, has no file: then labels.json.
        if (ReadAll(Path.Combine(directory, FileName)) is not { } bytes)
        {
            return ReadLegacy(directory);
        }
        Dictionary<string, string>? labels = null;
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (Parse(line, directory) is { } record)
            {
                labels ??= new Dictionary<string, string>();
                foreach (var (key, value) in record)
                {
                    labels[key] = value;
                }
            }
        }
        return labels;
    }

    private static void Append(string directory, IReadOnlyDictionary<string, string> labels, FileMode mode)
    {
        var record = JsonSerializer.SerializeToUtf8Bytes(labels, Json);
        var bytes = new byte[record.Length + 1];
        bytes[0] = (byte)'\n';
        record.CopyTo(bytes, 1);
        using var handle = File.OpenHandle(Path.Combine(directory, FileName), mode, FileAccess.Write);
        RandomAccess.Write(handle, bytes, RandomAccess.GetLength(handle));
    }

    private Dictionary<string, string>? ReadLegacy(string directory) =>
        ReadAll(Path.Combine(directory, LegacyFileName)) is { Length: > 0 } bytes ? Parse(Encoding.UTF8.GetString(bytes), directory) : null;

    private Dictionary<string, string>? Parse(string text, string directory)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(text, Json);
        }
        catch (JsonException e)
        {
            logger.LogWarning("Ignoring unreadable labels of local sandbox {Directory}: {Error}", directory, e.Message);
            return null;
        }
    }

    private static byte[]? ReadAll(string file)
    {
        try
        {
            return File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}
