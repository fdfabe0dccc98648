using Microsoft.Extensions.Configuration;

namespace SandboxBroker.Samples.OrleansClient;

/// <summary>What the sample acts on: command-line arguments (--key, --tenant, …) and the broker's cluster settings.</summary>
public sealed class SampleOptions
{
    /// <summary>The gateway's and silos' default, so a local ./run.sh cluster needs no settings.</summary>
    public const string DefaultPostgres = "Host=127.0.0.1;Port=54329;Database=sandboxbroker;Username=broker;Password=broker";

    public required string Key { get; init; }
    public required string Tenant { get; init; }
    public string? Owner { get; init; }
    public string? Pool { get; init; }
    public TimeSpan Ttl { get; init; }
    public bool Keep { get; init; }
    public required string Postgres { get; init; }
    public required string ClusterId { get; init; }
    public required string ServiceId { get; init; }

    public static SampleOptions Bind(IConfiguration configuration) => new()
    {
        Key = configuration["key"] ?? "sample:orleans-client",
        Tenant = configuration["tenant"] ?? "acme",
        Owner = configuration["owner"],
        Pool = configuration["pool"],
        Ttl = TimeSpan.FromSeconds(int.TryParse(configuration["ttl-seconds"], out var seconds) && seconds > 0 ? seconds : 600),
        Keep = bool.TryParse(configuration["keep"], out var keep) && keep,
        // BROKER_POSTGRES, read through the BROKER_ prefix as "POSTGRES", wins, as it does for the silos and the gateway.
        Postgres = configuration["POSTGRES"] is { Length: > 0 } fromEnvironment ? fromEnvironment
            : configuration["Postgres:ConnectionString"] ?? DefaultPostgres,
        ClusterId = configuration["Orleans:ClusterId"] ?? "sandboxbroker",
        ServiceId = configuration["Orleans:ServiceId"] ?? "sandboxbroker",
    };
}
