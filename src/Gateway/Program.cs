using SandboxBroker.Storage;

namespace SandboxBroker.Gateway;

/// <summary>
/// The gateway: an ASP.NET Core app that is an Orleans client. It finds silos through the membership table
/// in Postgres and reconnects by itself as silos come and go.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            var app = Build(args);
            await app.RunAsync();
            return 0;
        }
        catch (StartupException e)
        {
            await Console.Error.WriteLineAsync($"sandboxbroker-gateway: {e.Message}");
            return 2;
        }
    }

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? customize = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Configuration.AddEnvironmentVariables("BROKER_");
        var settings = builder.Configuration.GetSection(GatewaySettings.Section).Get<GatewaySettings>() ?? new GatewaySettings();
        var connectionString = PostgresOptions.Resolve(builder.Configuration);
        if (settings.Urls is { Length: > 0 } urls)
        {
            EnsureUrlsFree(urls);
            builder.WebHost.UseUrls(urls);
        }
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        // Built now, so a malformed connection string stops the start with one line.
        builder.Services.AddSingleton(PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-gateway"));
        builder.UseOrleansClient(client => ClientConfiguration.Configure(client, builder.Configuration, connectionString));
        customize?.Invoke(builder);

        var app = builder.Build();
        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }));
        app.MapGet("/readyz", Readiness.CheckAsync);
        return app;
    }

    /// <summary>
    /// Checked before start: the Orleans client holds the host's start until it reaches a silo, so a busy port
    /// would otherwise surface only later.
    /// </summary>
    private static void EnsureUrlsFree(string urls)
    {
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !System.Net.IPAddress.TryParse(uri.Host, out var address))
            {
                continue; // host names and wildcards are left to Kestrel
            }
            StartupChecks.EnsurePortFree(address, uri.Port, "cannot listen: Gateway:Urls");
        }
    }
}
