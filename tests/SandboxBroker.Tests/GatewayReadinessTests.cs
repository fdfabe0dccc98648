using System.Net;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>The gateway is an Orleans client that finds silos in the Postgres membership table.</summary>
public sealed class GatewayReadinessTests
{
    [Fact]
    public async Task The_gateway_finds_the_cluster_through_postgres_and_reports_ready()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var url = $"http://127.0.0.1:{TestPorts.Free()}";
        await using var gateway = SandboxBroker.Gateway.Program.Build([
            $"--Gateway:Urls={url}",
            $"--Postgres:ConnectionString={broker.Database.ConnectionString}",
            $"--Orleans:ClusterId={broker.Cluster.Options.ClusterId}",
            $"--Orleans:ServiceId={broker.Cluster.Options.ServiceId}",
        ]);
        await gateway.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        await Eventually.TrueAsync(async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, "the gateway reports ready");
        var body = await http.GetStringAsync("/readyz");
        Assert.Contains("\"silos\":1", body);
        await gateway.StopAsync();
    }
}
