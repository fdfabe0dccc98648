using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// A test double: a real local provider under the name "flaky" whose deletes fail a set number of times per
/// sandbox before they succeed. The counters live in the silo's container, one per silo.
/// </summary>
public sealed class FlakyProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger) : ISandboxProvider
{
    public const int FailuresPerDelete = 2;

    private readonly LocalSandboxProvider _inner = new(options, logger);
    private readonly Dictionary<string, int> _deleteCalls = new();

    public string Name => "flaky";

    public int DeleteCalls(string sandboxId)
    {
        lock (_deleteCalls)
        {
            return _deleteCalls.GetValueOrDefault(sandboxId);
        }
    }

    public Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken ct) => _inner.CreateAsync(request, ct);
    public Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.GetAsync(sandboxId, externalId, ct);
    public IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, CancellationToken ct) => _inner.ListAsync(labels, ct);
    public Task StartAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.StartAsync(sandboxId, externalId, ct);
    public Task StopAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.StopAsync(sandboxId, externalId, ct);

    public Task DeleteAsync(string sandboxId, string? externalId, CancellationToken ct)
    {
        int calls;
        lock (_deleteCalls)
        {
            calls = _deleteCalls[sandboxId] = _deleteCalls.GetValueOrDefault(sandboxId) + 1;
        }
        return calls <= FailuresPerDelete
            ? throw new ProviderException(Name, $"simulated delete failure {calls} of {FailuresPerDelete}", transient: true)
            : _inner.DeleteAsync(sandboxId, externalId, ct);
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddSingleton<FlakyProvider>();
            siloBuilder.Services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<FlakyProvider>());
        }
    }
}
