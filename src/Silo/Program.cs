using System.Net;
using Npgsql;
using Orleans.Dashboard;
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
        builder.Configuration.AddEnvironmentVariables("BROKER_");
        var connectionString = PostgresOptions.Resolve(builder.Configuration);
        var silo = builder.Configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
        var http = builder.Configuration.GetSection(HttpSettings.Section).Get<HttpSettings>() ?? new HttpSettings();
        DashboardSettings.Bind(builder.Configuration); // its mistakes too are one line before anything starts

        EnsurePortFree(silo.AdvertisedAddress, silo.SiloPort, "silo port (Orleans:SiloPort)");
        EnsurePortFree(silo.AdvertisedAddress, silo.GatewayPort, "gateway port (Orleans:GatewayPort)");
        EnsurePortFree(http.Address, http.Port, "HTTP port (Http:Port)");
        await using (var dataSource = PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-migrate"))
        {
            await PostgresConnection.CheckReachableAsync(dataSource, CancellationToken.None);
            using var loggerFactory = LoggerFactory.Create(l => l.AddConsole());
            await new SchemaMigrator(dataSource, loggerFactory.CreateLogger<SchemaMigrator>()).ApplyAsync();
        }

        builder.WebHost.UseUrls($"http://{http.Address}:{http.Port}");
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.Configure<DashboardSettings>(builder.Configuration.GetSection(DashboardSettings.Section));
        builder.UseOrleans(siloBuilder => SiloConfiguration.Configure(siloBuilder, builder.Configuration, connectionString));
        builder.AddBrokerTelemetry("sandboxbroker-silo");

        var app = builder.Build();
        app.UseMiddleware<DashboardAuthentication>();
        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" }));
        app.MapGet("/readyz", Readiness.CheckAsync);
        app.MapSiloMetrics();
        app.MapOrleansDashboard("/dashboard");
        return app;
    }

    private static void EnsurePortFree(string address, int port, string what)
    {
        if (!IPAddress.TryParse(address, out var ip))
        {
            throw new StartupException($"'{address}' is not an IP address ({what})");
        }
        StartupChecks.EnsurePortFree(ip, port, what);
    }
}
