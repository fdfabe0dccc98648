using SandboxBroker.Storage;

namespace SandboxBroker.Gateway;

/// <summary>The gateway's own settings ("Gateway" section).</summary>
public sealed class GatewaySettings
{
    public const string Section = "Gateway";

    /// <summary>Where the gateway listens; loopback by default.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8080";

    /// <summary>BROKER_POSTGRES, else Postgres:ConnectionString, else the project's local Postgres.</summary>
    public static string ConnectionString(IConfiguration configuration) =>
        Environment.GetEnvironmentVariable(PostgresOptions.EnvironmentVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : configuration.GetSection(PostgresOptions.Section).Get<PostgresOptions>()?.ConnectionString ?? PostgresOptions.DefaultConnectionString;
}
