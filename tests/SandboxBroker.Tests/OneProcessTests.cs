using System.Net;
using System.Net.Http.Headers;
using System.Text;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// The broker in one process (Gateway:HostsSilo): the gateway is the silo, on an empty database it brings to the schema
/// itself, with the REST API, the dashboard behind its credential and both metrics pages on one port.
/// </summary>
public sealed class OneProcessTests : IDisposable
{
    private const string AdminToken = "one-process-admin-token-0123456789abcdef";
    private const string DashboardPassword = "one-process-dashboard";
    private readonly string _sandboxRoot = Path.Combine(Path.GetTempPath(), "sandboxbroker-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_sandboxRoot))
        {
            Directory.Delete(_sandboxRoot, recursive: true);
        }
    }

    [Fact]
    public async Task A_gateway_that_hosts_the_silo_applies_the_schema_and_leases_a_sandbox_with_nothing_else_running()
    {
        await using var database = await TestDatabase.CreateAsync(withSchema: false);
        await using var gateway = SandboxBroker.Gateway.Program.Build([
            // Port 0: the kernel picks the HTTP port as Kestrel binds it, which it does only after the silo has started,
            // seconds after a port chosen in advance was checked free.
            "--Gateway:Urls=http://127.0.0.1:0",
            "--Gateway:HostsSilo=true",
            $"--Postgres:ConnectionString={database.ConnectionString}",
            $"--Orleans:ClusterId=one-{database.Name}",
            $"--Orleans:ServiceId=one-{database.Name}",
            $"--Orleans:SiloPort={TestPorts.Free()}",
            $"--Orleans:GatewayPort={TestPorts.Free()}",
            $"--Auth:AdminToken={AdminToken}",
            $"--Dashboard:Password={DashboardPassword}",
            $"--Providers:Local:Root={_sandboxRoot}",
            "--Broker:Pools:default:MinReady=0",
        ]);
        await gateway.StartAsync();
        var url = gateway.Urls.Single();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);

        await Eventually.TrueAsync(async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, "the one process reports ready");
        Assert.Contains("\"silos\":1", await http.GetStringAsync("/readyz"));
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM orleansmembershiptable WHERE status = 3"));

        using var acquired = await http.PutAsync("/v1/claims/one-process-1", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, acquired.StatusCode);
        var lease = await acquired.JsonAsync();
        var sandboxId = lease.Str("sandbox_id");
        Assert.True(Directory.Exists(Path.Combine(_sandboxRoot, sandboxId)), "the local provider made the sandbox");
        using var released = await http.DeleteAsync("/v1/claims/one-process-1?reason=done");
        Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        await Eventually.TrueAsync(() => Task.FromResult(!Directory.Exists(Path.Combine(_sandboxRoot, sandboxId))), "the released sandbox is deleted");

        using var anonymous = new HttpClient { BaseAddress = new Uri(url) };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/dashboard")).StatusCode);
        using var operatorClient = new HttpClient { BaseAddress = new Uri(url) };
        operatorClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"admin:{DashboardPassword}")));
        Assert.Equal(HttpStatusCode.OK, (await operatorClient.GetAsync("/dashboard/")).StatusCode);

        // The silo's meters (grain storage, claims) beside the gateway's, each on its own page.
        Assert.Contains("sandboxbroker_storage_batch_size_count", await anonymous.GetStringAsync("/metrics/silo"));
        Assert.DoesNotContain("sandboxbroker_storage_batch_size_count", await anonymous.GetStringAsync("/metrics"));

        await gateway.StopAsync();
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM orleansmembershiptable WHERE status = 3"));
    }
}
