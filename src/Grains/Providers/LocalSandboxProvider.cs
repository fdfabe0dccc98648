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
/// The embedded default: a real workspace directory per sandbox, its labels in <c>sandbox.json</c>,
/// optionally a process started in it. The directory is named by the broker's sandbox id, so create is
/// idempotent by id and a crash mid-create leaves a directory the reconciler can find by its labels. Stop marks the
/// sandbox stopped in its metadata (and ends its process); start clears the mark (and starts the process again), so the
/// broker's stopped-then-started path runs against the default provider too.
/// </summary>
public sealed class LocalSandboxProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger) : ISandboxProvider, ISandboxLabelUpdater
{
    private const string MetadataFile = "sandbox.json";
    private const string PidFile = "sandbox.pid";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly string _root = Path.GetFullPath(options.Value.Root);

    public string Name => "local";

    public async Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(request.SandboxId);
        var existing = await ReadAsync(directory, cancellationToken);
        if (existing is not null)
        {
            return existing;
        }
        Directory.CreateDirectory(Path.Combine(directory, "workspace"));
        var metadata = new LocalMetadata(request.SandboxId, request.Name, request.Template, request.Labels.ToDictionary(), DateTimeOffset.UtcNow);
        await WriteMetadataAsync(directory, metadata, cancellationToken);
        StartProcess(directory);
        logger.LogDebug("Created local sandbox {SandboxId} at {Directory}", request.SandboxId, directory);
        return (await ReadAsync(directory, cancellationToken))!;
    }

    public Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        ReadAsync(DirectoryFor(sandboxId), cancellationToken);

    public async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_root))
        {
            yield break;
        }
        foreach (var directory in Directory.EnumerateDirectories(_root))
        {
            var sandbox = await ReadAsync(directory, cancellationToken);
            if (sandbox is not null && labels.All(l => sandbox.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
            {
                yield return sandbox;
            }
        }
    }

    public async Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        var metadata = await RequireMetadataAsync(sandboxId, directory, cancellationToken);
        if (metadata.Stopped)
        {
            await WriteMetadataAsync(directory, metadata with { Stopped = false }, cancellationToken);
        }
        StartProcess(directory);
    }

    public async Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        var metadata = await RequireMetadataAsync(sandboxId, directory, cancellationToken);
        StopProcess(directory);
        if (!metadata.Stopped)
        {
            await WriteMetadataAsync(directory, metadata with { Stopped = true }, cancellationToken);
        }
    }

    public Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        if (!Directory.Exists(directory))
        {
            return Task.CompletedTask;
        }
        StopProcess(directory);
        // Remove the metadata first: a half-deleted directory is no longer listed as a sandbox.
        File.Delete(Path.Combine(directory, MetadataFile));
        Directory.Delete(directory, recursive: true);
        logger.LogDebug("Deleted local sandbox {SandboxId}", sandboxId);
        return Task.CompletedTask;
    }

    public async Task SetLabelsAsync(string sandboxId, string? externalId, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var directory = DirectoryFor(sandboxId);
        var metadata = await RequireMetadataAsync(sandboxId, directory, cancellationToken);
        foreach (var (key, value) in labels)
        {
            metadata.Labels[key] = value;
        }
        await WriteMetadataAsync(directory, metadata, cancellationToken);
    }

    private async Task<LocalMetadata> RequireMetadataAsync(string sandboxId, string directory, CancellationToken cancellationToken)
    {
        var file = Path.Combine(directory, MetadataFile);
        string text;
        try
        {
            text = await File.ReadAllTextAsync(file, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ProviderException(Name, $"sandbox {sandboxId} does not exist", transient: false, e);
        }
        return JsonSerializer.Deserialize<LocalMetadata>(text, Json)
            ?? throw new ProviderException(Name, $"unreadable metadata in {file}", transient: false);
    }

    /// <summary>Writes to a temporary file, then renames: a crash never leaves half a metadata file.</summary>
    private static async Task WriteMetadataAsync(string directory, LocalMetadata metadata, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(directory, MetadataFile + ".tmp");
        await File.WriteAllTextAsync(temp, JsonSerializer.Serialize(metadata, Json), cancellationToken);
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

    private async Task<ProviderSandbox?> ReadAsync(string directory, CancellationToken cancellationToken)
    {
        var file = Path.Combine(directory, MetadataFile);
        string text;
        try
        {
            text = await File.ReadAllTextAsync(file, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        var metadata = JsonSerializer.Deserialize<LocalMetadata>(text, Json)
            ?? throw new ProviderException(Name, $"unreadable metadata in {file}", transient: false);
        var workspace = Path.Combine(directory, "workspace");
        return new ProviderSandbox(
            metadata.SandboxId,
            ExternalId: directory,
            metadata.Name,
            metadata.Stopped ? ProviderSandboxState.Stopped : ProviderSandboxState.Running,
            metadata.Labels,
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
