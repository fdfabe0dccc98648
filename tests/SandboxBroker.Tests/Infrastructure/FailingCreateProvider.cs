using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// A test double: a local provider under the name "failing-create" whose create fails with an error that is no broker error,
/// as a sandbox grain call does when its silo dies mid-call (found by the process fault harness).
/// </summary>
public sealed class FailingCreateProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger) : ISandboxProvider
{
    private readonly LocalSandboxProvider _inner = new(options, logger);

    public string Name => "failing-create";

    public Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken ct) =>
        throw new InvalidOperationException("simulated: the create never answered");

    public Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.GetAsync(sandboxId, externalId, ct);
    public IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, CancellationToken ct) => _inner.ListAsync(labels, ct);
    public Task StartAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.StartAsync(sandboxId, externalId, ct);
    public Task StopAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.StopAsync(sandboxId, externalId, ct);
    public Task DeleteAsync(string sandboxId, string? externalId, CancellationToken ct) => _inner.DeleteAsync(sandboxId, externalId, ct);

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder.Services.AddSingleton<ISandboxProvider, FailingCreateProvider>();
    }
}
