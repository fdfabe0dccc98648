using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests;

/// <summary>The embedded provider: a real directory per sandbox, labels on disk, an optional process.</summary>
public sealed class LocalProviderTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sandboxbroker-local-" + Guid.NewGuid().ToString("N"));

    private LocalSandboxProvider Provider(string? command = null) =>
        new(Options.Create(new LocalProviderOptions { Root = _root, Command = command }), NullLogger<LocalSandboxProvider>.Instance);

    [Fact]
    public async Task Create_is_idempotent_by_id_list_filters_by_labels_and_delete_stops_the_command()
    {
        var provider = Provider(command: "exec sleep 300");
        var labels = new Dictionary<string, string> { ["sandboxbroker.pool"] = "p1" };
        var created = await provider.CreateAsync(new ProviderCreateRequest("abc123", "sbx-p1-abc123", null, labels), CancellationToken.None);
        var again = await provider.CreateAsync(new ProviderCreateRequest("abc123", "other-name", null, labels), CancellationToken.None);
        Assert.Equal((created.ExternalId, "sbx-p1-abc123"), (again.ExternalId, again.Name));
        Assert.True(Directory.Exists(created.Connection["workspace"]));

        var pid = int.Parse(await File.ReadAllTextAsync(Path.Combine(_root, "abc123", "sandbox.pid")));
        using var process = Process.GetProcessById(pid);
        Assert.False(process.HasExited);

        await provider.CreateAsync(new ProviderCreateRequest("def456", "x", null, new Dictionary<string, string> { ["sandboxbroker.pool"] = "p2" }), CancellationToken.None);
        var listed = new List<string>();
        await foreach (var s in provider.ListAsync(labels, CancellationToken.None))
        {
            listed.Add(s.SandboxId);
        }
        Assert.Equal(["abc123"], listed);

        await provider.DeleteAsync("abc123", null, CancellationToken.None);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.Null(await provider.GetAsync("abc123", null, CancellationToken.None));
        await provider.DeleteAsync("abc123", null, CancellationToken.None); // already gone: still succeeds
        await provider.DeleteAsync("def456", null, CancellationToken.None);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
