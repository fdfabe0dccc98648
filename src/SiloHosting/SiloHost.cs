using System.Net;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;
using Orleans.Dashboard;
using SandboxBroker.Storage;

namespace SandboxBroker.Silo;

/// <summary>
/// What a process adds to host a silo, the same in the silo's own process (src/Silo) and in the gateway's when it hosts
/// the silo itself (one process: <c>Gateway:HostsSilo</c>): the silo's defaults, its port checks, Orleans on Postgres and
/// the dashboard behind its credential.
/// </summary>
public static class SiloHost
{
    /// <summary>The silo's embedded defaults (the default pool, the local provider), beside the program.</summary>
    public const string DefaultsFile = "silo.json";

    /// <summary>
    /// Adds <see cref="DefaultsFile"/> below every other configuration source (appsettings.json, BROKER_ variables and the
    /// command line all override it), read from the program's directory whatever the content root.
    /// </summary>
    public static void AddSiloDefaults(ConfigurationManager configuration) =>
        configuration.Sources.Insert(0, new JsonConfigurationSource
        {
            FileProvider = new PhysicalFileProvider(AppContext.BaseDirectory),
            Path = DefaultsFile,
            Optional = false,
        });

    /// <summary>The silo's two Orleans ports, checked before start so a port in use is one line instead of a failed start.</summary>
    public static void CheckPorts(IConfiguration configuration)
    {
        var silo = configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
        EnsurePortFree(silo.AdvertisedAddress, silo.SiloPort, "silo port (Orleans:SiloPort)");
        EnsurePortFree(silo.AdvertisedAddress, silo.GatewayPort, "gateway port (Orleans:GatewayPort)");
    }

    public static void EnsurePortFree(string address, int port, string what)
    {
        if (!IPAddress.TryParse(address, out var ip))
        {
            throw new StartupException($"'{address}' is not an IP address ({what})");
        }
        StartupChecks.EnsurePortFree(ip, port, what);
    }

    /// <summary>
    /// Orleans as a silo on Postgres, with the dashboard's settings. Call after anything that must run before the silo
    /// starts (hosted services start in the order they were added; the silo is one of them).
    /// </summary>
    public static void AddSilo(WebApplicationBuilder builder, string connectionString)
    {
        DashboardSettings.Bind(builder.Configuration); // its mistakes too are one line before anything starts
        builder.Services.Configure<DashboardSettings>(builder.Configuration.GetSection(DashboardSettings.Section));
        builder.UseOrleans(silo => SiloConfiguration.Configure(silo, builder.Configuration, connectionString));
    }

    /// <summary>The dashboard at /dashboard behind HTTP Basic authentication (its credential in the Dashboard section).</summary>
    public static void UseDashboard(WebApplication app)
    {
        app.UseMiddleware<DashboardAuthentication>();
        app.MapOrleansDashboard("/dashboard");
    }
}
