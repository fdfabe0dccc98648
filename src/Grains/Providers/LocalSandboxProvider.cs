using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SandboxBroker.Grains.Providers;

public sealed class LocalProviderOptions
{
    public const string Section = "Providers:Local";

    /// <summary>Where workspaces live: one directory per sandbox.</summary>
    public string Root { get; set; } = Path.Combine(Environment.CurrentDirectory, ".sandboxes");

    /// <summary>An optional command started in the workspace on create/start (run by /bin/sh -c), stopped on stop/delete.</summary>
    public string? Command { get; set; }
}

/// <summary>
/// The embedded default: a real workspace directory per sandbox, its identity and labels in <c>sandbox.json</c>,
/// optionally a process started in it. The directory is named by the broker's sandbox id, so create is
/// idempotent by id and a crash mid-create leaves a directory the reconciler can find by its labels. Stop marks the
/// sandbox stopped in its metadata (and ends its process); start clears the mark (and starts the process again), so the
/// broker's stopped-then-started path runs against the default provider too.
/// <para>
/// The metadata file is a few hundred bytes in the page cache, so it is read and written synchronously: the async file
/// API would add a thread-pool hop and its allocations to every create and lease for nothing (the provider was a fifth
/// of the silo's CPU at 1,000 new leases a second).
/// </para>
/// <para>
/// Labels set after the create (a lease's claim key) are appended to <c>labels.jsonl</c> beside it (see
/// <see cref="LocalLabelsFile"/>). Rewriting <c>sandbox.json</c> for each lease made ext4 write the file's blocks out at once
/// (it does so when a file replaces another by rename, and when one truncated to nothing is closed): about 100 µs of CPU
/// per lease. A crash can cut the last labels record short, and it is ignored: those labels help people find a claim's
/// sandbox, while what makes the directory the broker's sandbox (its id and deployment labels) stays in
/// <c>sandbox.json</c>, which is still replaced whole.
/// </para>
/// </summary>
public sealed class LocalSandboxProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger) : ISandboxProvider, ISandboxLabelUpdater, ISandboxStateReader
{
    private const string MetadataFile = "sandbox.json";
    private const string PidFile = "sandbox.pid";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly string _root = Path.GetFullPath(options.Value.Root);
    private readonly LocalLabelsFile _labels = new(logger);

    public string Name => "local";

    public Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var directory = DirectoryFor(request.SandboxId);
        if (Read(directory) is { } existing)
        {
            return Task.FromResult(existing);
        }
        Directory.CreateDirectory(Path.Combine(directory, "workspace"));
        LocalLabelsFile.Reset(directory);
        var metadata = new LocalMetadata(request.SandboxId, request.Name, request.Template, request.Labels.ToDictionary(), DateTimeOffset.UtcNow);
        WriteMetadata(directory, metadata);
        StartProcess(directory);
        logger.LogDebug("Created local sandbox {SandboxId} at {Directory}", request.SandboxId, directory);
        return Task.FromResult(ToSandbox(directory, metadata));
    }

    public Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Task.FromResult(Read(DirectoryFor(sandboxId)));

    /// <summary>The stopped mark is in the metadata: one file read, without the labels.</summary>
    public Task<ProviderSandboxState?> GetStateAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Task.FromResult<ProviderSandboxState?>(ReadMetadata(DirectoryFor(sandboxId)) switch
        {
            null => null,
            { Stopped: true } => ProviderSandboxState.Stopped,
            _ => ProviderSandboxState.Running,
        });

    public async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_root))
        {
            yield break;
        }
        var listed = 0;
        foreach (var directory in Directory.EnumerateDirectories(_root))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (++listed % 64 == 0)
            {
                await Task.Yield(); // a long listing does not hold the caller's thread in one piece
            }
            var sandbox = Read(directory);
            if (sandbox is not null && labels.All(l => sandbox.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
            {
                yield return sandbox;
            }
        }
    }

    public Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        var metadata = RequireMetadata(sandboxId, directory);
        if (metadata.Stopped)
        {
            WriteMetadata(directory, metadata with { Stopped = false });
        }
        StartProcess(directory);
        return Task.CompletedTask;
    }

    public Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        var metadata = RequireMetadata(sandboxId, directory);
        StopProcess(directory);
        if (!metadata.Stopped)
        {
            WriteMetadata(directory, metadata with { Stopped = true });
        }
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        if (!Directory.Exists(directory))
        {
            return Task.CompletedTask;
        }
        StopProcess(directory);
        // The labels first: a relabel then fails as for a sandbox that is gone. Then the metadata: a half-deleted directory
        // is no longer listed as a sandbox.
        LocalLabelsFile.Remove(directory);
        File.Delete(Path.Combine(directory, MetadataFile));
        Directory.Delete(directory, recursive: true);
        logger.LogDebug("Deleted local sandbox {SandboxId}", sandboxId);
        return Task.CompletedTask;
    }

    public Task SetLabelsAsync(string sandboxId, string? externalId, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        // The create made the labels file and the delete removes it first, so finding it is finding the sandbox. A sandbox
        // created before the file existed is found by its metadata.
        if (!_labels.TryAdd(directory, labels))
        {
            if (!File.Exists(Path.Combine(directory, MetadataFile)))
            {
                throw DoesNotExist(sandboxId);
            }
            _labels.Add(directory, labels);
        }
        return Task.CompletedTask;
    }

    private LocalMetadata RequireMetadata(string sandboxId, string directory) => ReadMetadata(directory) ?? throw DoesNotExist(sandboxId);

    private ProviderException DoesNotExist(string sandboxId) => new(Name, $"sandbox {sandboxId} does not exist", transient: false);

    /// <summary>The metadata, or null when the directory or its metadata file is not there.</summary>
    private LocalMetadata? ReadMetadata(string directory)
    {
        var file = Path.Combine(directory, MetadataFile);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        return JsonSerializer.Deserialize<LocalMetadata>(bytes, Json)
            ?? throw new ProviderException(Name, $"unreadable metadata in {file}", transient: false);
    }

    /// <summary>Writes to a temporary file, then renames: a crash never leaves half a metadata file.</summary>
    private static void WriteMetadata(string directory, LocalMetadata metadata)
    {
        var temp = Path.Combine(directory, MetadataFile + ".tmp");
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(metadata, Json));
        File.Move(temp, Path.Combine(directory, MetadataFile), overwrite: true);
    }

    private string DirectoryFor(string sandboxId)
    {
        if (sandboxId.Length == 0 || sandboxId.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_'))
        {
            throw new ProviderException(Name, $"'{sandboxId}' is not a valid sandbox id", transient: false);
        }
        return Path.Combine(_root, sandboxId);
    }

    /// <summary>The sandbox in <paramref name="directory"/>; null when there is none (a create checks first, so a new id
    /// costs no exception).</summary>
    private ProviderSandbox? Read(string directory) =>
        File.Exists(Path.Combine(directory, MetadataFile)) && ReadMetadata(directory) is { } metadata
            ? ToSandbox(directory, metadata, _labels.Read(directory))
            : null;

    private static ProviderSandbox ToSandbox(string directory, LocalMetadata metadata, Dictionary<string, string>? addedLabels = null)
    {
        var workspace = Path.Combine(directory, "workspace");
        var labels = metadata.Labels;
        if (addedLabels is { Count: > 0 })
        {
            labels = new Dictionary<string, string>(labels);
            foreach (var (key, value) in addedLabels)
            {
                labels[key] = value;
            }
        }
        return new ProviderSandbox(
            metadata.SandboxId,
            ExternalId: directory,
            metadata.Name,
            metadata.Stopped ? ProviderSandboxState.Stopped : ProviderSandboxState.Running,
            labels,
            new Dictionary<string, string> { ["workspace"] = workspace },
            metadata.CreatedAt);
    }

    private void StartProcess(string directory)
    {
        if (string.IsNullOrWhiteSpace(options.Value.Command) || RunningPid(directory) is not null)
        {
            return;
        }
        var start = new ProcessStartInfo("/bin/sh", ["-c", options.Value.Command])
        {
            WorkingDirectory = Path.Combine(directory, "workspace"),
            UseShellExecute = false,
            RedirectStandardOutput = false,
            RedirectStandardError = false,
        };
        using var process = Process.Start(start) ?? throw new ProviderException(Name, "could not start the sandbox command", transient: true);
        File.WriteAllText(Path.Combine(directory, PidFile), process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static void StopProcess(string directory)
    {
        if (RunningPid(directory) is { } pid)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill(entireProcessTree: true);
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
        File.Delete(Path.Combine(directory, PidFile));
    }

    private static int? RunningPid(string directory)
    {
        var file = Path.Combine(directory, PidFile);
        return File.Exists(file) && int.TryParse(File.ReadAllText(file), out var pid) ? pid : null;
    }

    /// <summary>What sandbox.json holds. Files written before Stopped existed read as running.</summary>
    private sealed record LocalMetadata(string SandboxId, string Name, string? Template, Dictionary<string, string> Labels, DateTimeOffset CreatedAt, bool Stopped = false);
}
