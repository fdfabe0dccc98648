using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using SandboxBroker.Grains;
using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Providers;

/// <summary>The configured providers as a silo registers them (BrokerServices.AddConfiguredProviders), outside a cluster.</summary>
public static class ProviderServices
{
    public static ServiceProvider Build(IDictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddConfiguredProviders(configuration);
        return services.BuildServiceProvider();
    }

    public static ISandboxProvider Provider(this IServiceProvider services, string name) =>
        services.GetServices<ISandboxProvider>().Single(p => p.Name == name);

    /// <summary>
    /// Settings for a REST provider against a test double: short timeouts and retry delays, pages of two, and a
    /// breaker that opens only when asked to (<paramref name="breakerMinimumThroughput"/>).
    /// </summary>
    public static Dictionary<string, string?> Http(string section, string baseUrl, int breakerMinimumThroughput = 1000, string attemptTimeout = "00:00:05")
        => new()
        {
            [$"{section}:BaseUrl"] = baseUrl,
            [$"{section}:ApiKey"] = HttpTestDouble.ApiKey,
            [$"{section}:AttemptTimeout"] = attemptTimeout,
            [$"{section}:TotalTimeout"] = "00:00:20",
            [$"{section}:MaxRetries"] = "3",
            [$"{section}:RetryBaseDelay"] = "00:00:00.020",
            [$"{section}:BreakerMinimumThroughput"] = breakerMinimumThroughput.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [$"{section}:BreakerFailureRatio"] = "0.5",
            [$"{section}:BreakerSamplingDuration"] = "00:01:00",
            [$"{section}:BreakerBreakDuration"] = "00:05:00",
            [$"{section}:PageSize"] = "2",
            [$"{section}:PollInterval"] = "00:00:00.050",
        };

    public static async Task<List<ProviderSandbox>> ListAllAsync(this ISandboxProvider provider, IReadOnlyDictionary<string, string> labels)
    {
        var all = new List<ProviderSandbox>();
        await foreach (var sandbox in provider.ListAsync(labels, CancellationToken.None))
        {
            all.Add(sandbox);
        }
        return all;
    }
}
