using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// A test double: a real local provider under the name "crashy" whose first create of each sandbox creates it and
/// then fails with an error the broker does not expect, as a crash between the provider's create and the record's
/// update would: the record stays in provisioning while the provider holds the sandbox. Later creates succeed.
/// </summary>
public sealed class CrashingProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger) : ISandboxProvider
{
    private readonly LocalSandboxProvider _inner = new(options, logger);
    private readonly ConcurrentDictionary<string, bool> _crashed = new();

    public string Name => "crashy";

    public async Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken ct)
    {
        var created = await _inner.CreateAsync(request, ct);
        return _crashed.TryAdd(request.SandboxId, true)
            ? throw new InvalidOperationException($"simulated crash after the provider created sandbox {request.SandboxId}")
            : created;
    }

    public Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.GetAsync(sandboxId, externalId, ct);
    public IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, CancellationToken ct) => _inner.ListAsync(labels, ct);
    public Task StartAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.StartAsync(sandboxId, externalId, ct);
    public Task StopAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.StopAsync(sandboxId, externalId, ct);
    public Task DeleteAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.DeleteAsync(sandboxId, externalId, ct);

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.Services.AddSingleton<ISandboxProvider, CrashingProvider>();
    }
}
