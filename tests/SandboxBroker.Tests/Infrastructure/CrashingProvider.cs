using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// A test double: a real local provider whose create fails with an error the broker does not expect. Two of them:
/// <list type="bullet">
/// <item>"crashy" creates the sandbox and then fails, the first time per sandbox, as a crash between the provider's
/// create and the record's update would (the record stays in provisioning while the provider holds the sandbox);</item>
/// <item>"failing-create" fails every create without creating anything, as a sandbox grain call does when its silo
/// dies mid-call (found by the process fault harness).</item>
/// </list>
/// </summary>
public sealed class CrashingProvider(string name, bool createsBeforeFailing, LocalSandboxProvider inner) : DelegatingSandboxProvider(inner)
{
    private readonly ConcurrentDictionary<string, bool> _crashed = new();

    public override string Name => name;

    public override async Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken)
    {
        if (!createsBeforeFailing)
        {
            throw new InvalidOperationException("simulated: the create never answered");
        }
        var created = await Inner.CreateAsync(request, cancellationToken);
        return _crashed.TryAdd(request.SandboxId, true)
            ? throw new InvalidOperationException($"simulated crash after the provider created sandbox {request.SandboxId}")
            : created;
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddSingleton<ISandboxProvider>(sp => Create(sp, "crashy", createsBeforeFailing: true));
            siloBuilder.Services.AddSingleton<ISandboxProvider>(sp => Create(sp, "failing-create", createsBeforeFailing: false));
        }

        private static CrashingProvider Create(IServiceProvider services, string name, bool createsBeforeFailing) =>
            new(name, createsBeforeFailing, new LocalSandboxProvider(
                services.GetRequiredService<IOptions<LocalProviderOptions>>(), services.GetRequiredService<ILogger<LocalSandboxProvider>>()));
    }
}
