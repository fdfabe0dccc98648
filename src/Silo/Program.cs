using SandboxBroker.ServiceDefaults;
using SandboxBroker.Silo.Metrics;
using SandboxBroker.Storage;

namespace SandboxBroker.Silo;

/// <summary>
/// The silo host: Orleans on Postgres (membership, grain state, reminders), the dashboard at /dashboard behind
/// a credential, /healthz and /readyz. Start-up problems (bad connection string, Postgres down, a port in use)
/// are one line on stderr and a non-zero exit, before anything is started.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            var app = await BuildAsync(args);
            await app.RunAsync();
            return 0;
        }
        catch (StartupException e)
        {
            await Console.Error.WriteLineAsync($"sandboxbroker-silo: {e.Message}");
            return 2;
        }
    }

    public static async Task<WebApplication> BuildAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        SiloHost.AddSiloDefaults(builder.Configuration);
        builder.Configuration.AddEnvironmentVariables("BROKER_");
        var connectionString = PostgresOptions.Resolve(builder.Configuration);
        var http = builder.Configuration.GetSection(HttpSettings.Section).Get<HttpSettings>() ?? new HttpSettings();

        SiloHost.CheckPorts(builder.Configuration);
        SiloHost.EnsurePortFree(http.Address, http.Port, "HTTP port (Http:Port)");
        using (var loggerFactory = LoggerFactory.Create(l => l.AddConsole()))
        {
            await SchemaMigration.ApplyAsync(connectionString, loggerFactory, CancellationToken.None);
        }

        builder.WebHost.UseUrls($"http://{http.Address}:{http.Port}");
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        SiloHost.AddSilo(builder, connectionString);
        builder.AddBrokerTelemetry("sandboxbroker-silo");

        var app = builder.Build();
        SiloHost.UseDashboard(app);
        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }));
        app.MapGet("/readyz", Readiness.CheckAsync);
        app.MapSiloMetrics();
        return app;
    }
}
