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
        var connectionString = GatewaySettings.ConnectionString(builder.Configuration);
        if (settings.Urls is { Length: > 0 } urls)
        {
            builder.WebHost.UseUrls(urls);
        }
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        builder.Services.AddSingleton(_ => PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-gateway"));
        builder.UseOrleansClient(client => ClientConfiguration.Configure(client, builder.Configuration, connectionString));
        customize?.Invoke(builder);

        var app = builder.Build();
        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }));
        app.MapGet("/readyz", Readiness.CheckAsync);
        return app;
    }
}
