using System.Net;
using Microsoft.Extensions.Configuration;
using Orleans.Configuration;
using Orleans.Dashboard;
using SandboxBroker.Grains;
using SandboxBroker.Grains.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Persistence;
using SandboxBroker.Silo.Metrics;

namespace SandboxBroker.Silo;

/// <summary>The silo's Orleans setup, shared by the real host and the test clusters.</summary>
public static class SiloConfiguration
{
    public const string Invariant = "Npgsql";

    public static void Configure(ISiloBuilder silo, IConfiguration configuration, string connectionString, bool configureEndpoints = true)
    {
        connectionString = Storage.PostgresConnection.Tuned(connectionString);
        var settings = configuration.GetSection(SiloSettings.Section).Get<SiloSettings>() ?? new SiloSettings();
        silo.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = settings.ClusterId;
            o.ServiceId = settings.ServiceId;
        });
        if (configureEndpoints)
        {
            silo.ConfigureEndpoints(IPAddress.Parse(settings.AdvertisedAddress), settings.SiloPort, settings.GatewayPort, listenOnAnyHostAddress: false);
        }
        silo.UseAdoNetClustering(o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        // The grains on the hot path keep their state in the broker's own group-committed storage (with their index rows
        // and audit events, in one statement each); the others in Orleans' ADO.NET storage.
        silo.Services.AddGroupCommitGrainStorage(StorageNames.Broker, configuration, connectionString);
        silo.AddAdoNetGrainStorage(StorageNames.AdoNet, o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        silo.UseAdoNetReminderService(o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        silo.Configure<ReminderOptions>(o => o.MinimumReminderPeriod = settings.MinimumReminderPeriod);
        silo.Services.AddBrokerGrainServices(configuration, connectionString);
        // A grain call that fails on Postgres carries the NpgsqlException to the caller (who answers 503), not a codec error.
        silo.Services.Configure<Orleans.Serialization.ExceptionSerializationOptions>(o => o.SupportedNamespacePrefixes.Add("Npgsql"));
        // Deployment id labels provider sandboxes; default it to the service id so it is stable and unique per service.
        silo.Services.PostConfigure<BrokerOptions>(o =>
        {
            if (o.DeploymentId == new BrokerOptions().DeploymentId)
            {
                o.DeploymentId = settings.ServiceId;
            }
        });
        // Grain calls carry the caller's trace context, so one trace runs from the gateway's request through the grains.
        silo.AddActivityPropagation();
        silo.AddBrokerMetrics(configuration);
        var dashboard = DashboardSettings.Bind(configuration);
        silo.AddDashboard(o => o.CounterUpdateIntervalMs = (int)dashboard.CounterUpdateInterval.TotalMilliseconds);
        silo.Services.AddHostedService(services => new DashboardMetricReader(
            services, dashboard.CounterUpdateInterval, services.GetRequiredService<ILogger<DashboardMetricReader>>()));
        silo.UseClusterTls(configuration);
        silo.AddStartupTask(WakeUp);
    }

    /// <summary>
    /// Activates the configured pools (so they start warming), each provider's reconciler (so its reminder runs) and the audit
    /// retention (its reminder).
    /// </summary>
    private static async Task WakeUp(IServiceProvider services, CancellationToken cancellationToken)
    {
        var grains = services.GetRequiredService<IGrainFactory>();
        var options = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BrokerOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(SiloConfiguration));
        try
        {
            foreach (var pool in options.ConfiguredPools)
            {
                await grains.GetGrain<IPoolGrain>(pool).GetConfig();
            }
            foreach (var provider in services.GetRequiredService<SandboxProviderRegistry>().Names)
            {
                await grains.GetGrain<IReconcilerGrain>(provider).LastReport();
            }
            await grains.GetGrain<IAuditRetentionGrain>(IAuditRetentionGrain.Key).Start();
        }
        catch (Exception e)
        {
            // Not fatal: pools and reconcilers also wake on first use and by their reminders.
            logger.LogWarning(e, "Could not wake pools and reconcilers at start");
        }
    }
}
