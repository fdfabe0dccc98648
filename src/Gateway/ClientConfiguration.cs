using Orleans.Configuration;

namespace SandboxBroker.Gateway;

/// <summary>The Orleans client: finds gateways in the Postgres membership table and retries the connection forever.</summary>
public static class ClientConfiguration
{
    public static void Configure(IClientBuilder client, IConfiguration configuration, string connectionString)
    {
        var cluster = configuration.GetSection("Orleans");
        client.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = cluster["ClusterId"] ?? "sandboxbroker";
            o.ServiceId = cluster["ServiceId"] ?? "sandboxbroker";
        });
        client.UseAdoNetClustering(o =>
        {
            o.Invariant = "Npgsql";
            o.ConnectionString = connectionString;
        });
        client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(10));
        // Grain calls carry the request's trace context, so the silos' spans join the gateway's trace.
        client.AddActivityPropagation();
        client.UseClusterTls(configuration);
        client.Services.Configure<Orleans.Serialization.ExceptionSerializationOptions>(o => o.SupportedNamespacePrefixes.Add("Npgsql"));
        // Keep trying while no silo is up yet: the gateway starts before, or without, the cluster.
        client.UseConnectionRetryFilter(async (exception, ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            return true;
        });
    }
}
