using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// A test double: a real local provider under the name "gated" whose deletes wait until the test opens the gate, so a
/// test can look at the broker while deletions are certainly under way however slow the machine is. One per silo.
/// </summary>
public sealed class GatedProvider(IOptions<LocalProviderOptions> options, ILogger<LocalSandboxProvider> logger)
    : DelegatingSandboxProvider(new LocalSandboxProvider(options, logger))
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _waiting;

    public override string Name => "gated";

    /// <summary>Deletes waiting at the gate now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Lets every waiting and later delete through.</summary>
    public void Open() => _open.TrySetResult();

    public override async Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _open.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        await Inner.DeleteAsync(sandboxId, externalId, cancellationToken);
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddSingleton<GatedProvider>();
            siloBuilder.Services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<GatedProvider>());
        }
    }
}
