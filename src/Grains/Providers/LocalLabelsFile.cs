using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace SandboxBroker.Grains.Providers;

/// <summary>
/// A local sandbox's <c>labels.json</c>: the labels set after its create (a lease's claim key), overwritten in place
/// (see <see cref="LocalSandboxProvider"/>'s remarks). A torn file reads as no labels.
/// </summary>
internal sealed class LocalLabelsFile(ILogger logger, JsonSerializerOptions json)
{
    private const string FileName = "labels.json";

    /// <summary>The labels set since the create; null when none were, or when the file is torn.</summary>
    public Dictionary<string, string>? Read(string directory)
    {
        try
        {
            using var handle = File.OpenHandle(Path.Combine(directory, FileName));
            return Read(handle, RandomAccess.GetLength(handle), directory);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Adds <paramref name="labels"/> to those the file holds, with one open for the read and the write: a lease's relabel is on the acquire's path.</summary>
    public void Add(string directory, IReadOnlyDictionary<string, string> labels)
    {
        using var handle = File.OpenHandle(Path.Combine(directory, FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite);
        var length = RandomAccess.GetLength(handle);
        var added = Read(handle, length, directory) ?? new Dictionary<string, string>();
        foreach (var (key, value) in labels)
        {
            added[key] = value;
        }
        // In place: opened without truncation and cut to the new length only when it shrank, so ext4 has no replaced or
        // emptied file to write out at once.
        var bytes = JsonSerializer.SerializeToUtf8Bytes(added, json);
        RandomAccess.Write(handle, bytes, 0);
        if (bytes.Length < length)
        {
            RandomAccess.SetLength(handle, bytes.Length);
        }
    }

    /// <summary>Removes the file a delete interrupted after the metadata went may have left.</summary>
    public static void Remove(string directory) => File.Delete(Path.Combine(directory, FileName));

    private Dictionary<string, string>? Read(SafeFileHandle handle, long length, string directory)
    {
        if (length == 0)
        {
            return null;
        }
        var bytes = new byte[length];
        var read = RandomAccess.Read(handle, bytes, 0);
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(bytes.AsSpan(0, read), json);
        }
        catch (JsonException e)
        {
            logger.LogWarning("Ignoring the unreadable labels of local sandbox {Directory}: {Error}", directory, e.Message);
            return null;
        }
    }
}
