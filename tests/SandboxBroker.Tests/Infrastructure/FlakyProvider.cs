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
public sealed class FlakyProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger)
    : DelegatingSandboxProvider(new LocalSandboxProvider(options, logger))
{
    public const int FailuresPerDelete = 2;

    private readonly Dictionary<string, int> _deleteCalls = new();

    public override string Name => "flaky";

    public int DeleteCalls(string sandboxId)
    {
        lock (_deleteCalls)
        {
            return _deleteCalls.GetValueOrDefault(sandboxId);
        }
    }

    public override Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        int calls;
        lock (_deleteCalls)
        {
            calls = _deleteCalls[sandboxId] = _deleteCalls.GetValueOrDefault(sandboxId) + 1;
        }
        return calls <= FailuresPerDelete
            ? throw new ProviderException(Name, $"simulated delete failure {calls} of {FailuresPerDelete}", transient: true)
            : Inner.DeleteAsync(sandboxId, externalId, cancellationToken);
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
