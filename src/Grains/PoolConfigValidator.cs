namespace SandboxBroker.Grains;

/// <summary>Checks a pool configuration, naming the field at fault.</summary>
public static class PoolConfigValidator
{
    /// <param name="templateProblem">Why the provider (first argument) cannot use the template (second), or null.</param>
    public static void Validate(PoolConfig config, Func<string, bool> providerExists, Func<string, string, string?>? templateProblem = null)
    {
        if (!PoolName.IsValid(config.Name))
        {
            Fail("name", PoolName.Rule);
        }
        if (!providerExists(config.Provider))
        {
            Fail("provider", $"unknown provider '{config.Provider}'");
        }
        if (config.Template is { } template && templateProblem?.Invoke(config.Provider, template) is { } problem)
        {
            Fail("template", problem);
        }
        if (config.MinReady < 0)
        {
            Fail("min_ready", "min_ready must be 0 or more");
        }
        if (config.MaxTotal < 1)
        {
            Fail("max_total", "max_total must be at least 1");
        }
        if (config.MinReady > config.MaxTotal)
        {
            Fail("min_ready", "min_ready must not exceed max_total");
        }
        if (config.DefaultTtl <= TimeSpan.Zero)
        {
            Fail("default_ttl_seconds", "default TTL must be positive");
        }
        if (config.MaxTtl < config.DefaultTtl)
        {
            Fail("max_ttl_seconds", "max TTL must be at least the default TTL");
        }
        if (config.IdleTimeout is { } idle && idle <= TimeSpan.Zero)
        {
            Fail("idle_timeout_seconds", "idle timeout must be positive");
        }
        if (config.MaxConcurrentCreates is < 1 or > 64)
        {
            Fail("max_concurrent_creates", "max_concurrent_creates must be 1-64");
        }
    }

    private static void Fail(string field, string message) =>
        throw new BrokerException(ErrorCodes.InvalidArgument, message) { Field = field };
}
