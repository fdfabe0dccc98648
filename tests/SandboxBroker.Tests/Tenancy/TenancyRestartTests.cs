using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging.Abstractions;
using SandboxBroker.Storage;
using SandboxBroker.Tests.Api;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Tenancy;

/// <summary>What tenancy keeps across a restart of the whole broker (silos and gateway) on the same database.</summary>
public sealed class TenancyRestartTests
{
    /// <summary>Stops a cluster's silos and client, keeping its database for the next one.</summary>
    private static async Task StopKeepingDatabaseAsync(BrokerCluster broker)
    {
        await broker.Cluster.StopAllSilosAsync();
        await broker.Cluster.DisposeAsync();
        if (Directory.Exists(broker.SandboxRoot))
        {
            Directory.Delete(broker.SandboxRoot, recursive: true);
        }
    }

    [Fact]
    public async Task A_quota_set_through_the_API_holds_after_the_silos_and_the_gateway_restart()
    {
        var serviceId = "quota-" + Guid.NewGuid().ToString("N")[..8];
        var tenant = "t-" + Guid.NewGuid().ToString("N")[..10];
        var first = await BrokerCluster.StartAsync(silos: 1, serviceId: serviceId);
        var database = first.Database;
        string token;
        await using (var gateway = await BrokerGateway.StartAsync(first))
        {
            token = await gateway.MintTokenAsync(tenant);
            (await gateway.Admin().PutAsJsonAsync($"/v1/admin/tenants/{tenant}/quota", new { max_active_leases = 1, allowed_pools = new[] { "default" } })).Dispose();
            Assert.Equal(HttpStatusCode.Created, (await gateway.Client(token).PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}", new { })).StatusCode);
        }
        await StopKeepingDatabaseAsync(first);

        await using var second = await BrokerCluster.StartAsync(silos: 1, database: database, serviceId: serviceId);
        await using var restarted = await BrokerGateway.StartAsync(second);
        var view = await (await restarted.Admin().GetAsync($"/v1/admin/tenants/{tenant}/quota")).JsonAsync();
        Assert.Equal(1, view.GetProperty("quota").GetProperty("max_active_leases").GetInt32());
        Assert.Equal("default", view.GetProperty("allowed_pools")[0].GetString());
        // The lease held before the restart still counts: it is read back from the claim index.
        Assert.Equal(1, view.GetProperty("active_leases").GetInt32());
        await (await restarted.Client(token).PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey())}", new { }))
            .AssertErrorAsync(HttpStatusCode.Conflict, "TENANT_QUOTA_EXCEEDED");
    }

    [Fact]
    public async Task Claims_and_names_stored_before_the_upgrade_become_the_owning_tenants()
    {
        var serviceId = "upgrade-" + Guid.NewGuid().ToString("N")[..8];
        var first = await BrokerCluster.StartAsync(silos: 1, serviceId: serviceId);
        var database = first.Database;
        const string key = "github:octo/upgrade#7";
        var name = "upgrade-" + Guid.NewGuid().ToString("N")[..8];
        var held = await first.Grains.GetClaim("acme", key).Acquire(new AcquireRequest("default", "acme", "o", Name: name));
        await first.Grains.GetClaim("acme", "track:upgrade/ended").Acquire(new AcquireRequest("default", "acme", "o"));
        await first.Grains.GetClaim("acme", "track:upgrade/ended").Release("done");
        await StopKeepingDatabaseAsync(first);

        // The rows as a broker before per-tenant keys wrote them: claims and names under the bare key, and 0015 not yet applied.
        await database.ScalarAsync<int>("""
            UPDATE broker_grain_state SET grain_key = substr(grain_key, length('acme/') + 1)
            WHERE state_name IN ('claim', 'sandbox-name') AND grain_key LIKE 'acme/%'
            """);
        await database.ScalarAsync<int>("UPDATE broker_claims SET claim_key = substr(claim_key, length('acme/') + 1) WHERE claim_key LIKE 'acme/%'");
        await database.ScalarAsync<int>("DELETE FROM broker_schema_migrations WHERE file_name LIKE '0015%'");
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE state_name = 'claim' AND grain_key = $1", key));

        await new SchemaMigrator(database.DataSource, NullLogger<SchemaMigrator>.Instance).ApplyAsync();
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE state_name = 'claim' AND grain_key = $1", ClaimId.Of("acme", key)));
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE state_name = 'claim' AND grain_key = 'acme/track:upgrade/ended'"));
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE state_name = 'sandbox-name' AND grain_key = $1", $"acme/{name}"));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_claims WHERE claim_key NOT LIKE 'acme/%'"));
        // Applying it again (a changed checksum) moves nothing twice.
        await database.ScalarAsync<int>("UPDATE broker_schema_migrations SET checksum = 'changed' WHERE file_name LIKE '0015%'");
        await new SchemaMigrator(database.DataSource, NullLogger<SchemaMigrator>.Instance).ApplyAsync();
        Assert.Equal(1L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE state_name = 'claim' AND grain_key = $1", ClaimId.Of("acme", key)));

        await using var second = await BrokerCluster.StartAsync(silos: 1, database: database, serviceId: serviceId);
        var claim = second.Grains.GetClaim("acme", key);
        Assert.Equal(held.Lease.SandboxId, (await claim.Get())?.SandboxId);
        Assert.Equal(AcquireOutcome.Repeat, (await claim.Acquire(new AcquireRequest("default", "acme", "o", Name: name))).Outcome);
        Assert.Equal(LeaseStatus.Released, Assert.Single(await second.Grains.GetClaim("acme", "track:upgrade/ended").History()).Status);
        // The name is still held within acme, and free for another tenant.
        var clash = await Assert.ThrowsAsync<BrokerException>(() =>
            second.Grains.GetClaim("acme", "github:octo/upgrade#8").Acquire(new AcquireRequest("default", "acme", "o", Name: name)));
        Assert.Equal((ErrorCodes.Conflict, "name"), (clash.Code, clash.Field));
        Assert.Equal(name, (await second.Grains.GetClaim("other", key).Acquire(new AcquireRequest("default", "other", "o", Name: name))).Sandbox.Name);
        // Releasing the migrated lease frees its name within acme.
        await claim.Release("closed");
        Assert.Equal(name, (await second.Grains.GetClaim("acme", "github:octo/upgrade#8").Acquire(new AcquireRequest("default", "acme", "o", Name: name))).Sandbox.Name);
    }
    [Fact]
    public async Task An_owners_limit_counts_the_leases_it_held_before_a_restart()
    {
        var serviceId = "owner-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new Dictionary<string, string?> { ["Broker:OwnerMaxActiveLeases"] = "2" };
        var first = await BrokerCluster.StartAsync(silos: 1, settings, serviceId: serviceId);
        var database = first.Database;
        var request = new AcquireRequest("default", "acme", "ci-bot");
        await first.Grains.GetClaim("acme", "track:owner/a").Acquire(request);
        await first.Grains.GetClaim("acme", "track:owner/b").Acquire(request);
        // Another tenant's owner of the same name is another owner.
        await first.Grains.GetClaim("other", "track:owner/a").Acquire(request with { Tenant = "other" });
        await StopKeepingDatabaseAsync(first);

        await using var second = await BrokerCluster.StartAsync(silos: 1, settings, database: database, serviceId: serviceId);
        var refused = await Assert.ThrowsAsync<BrokerException>(() => second.Grains.GetClaim("acme", "track:owner/c").Acquire(request));
        Assert.Equal(ErrorCodes.OwnerLimitReached, refused.Code);
        Assert.Equal(["track:owner/a", "track:owner/b"], (await second.Grains.GetGrain<ITenantGrain>("acme").GetOwnerUsage("ci-bot")).ActiveClaims);
        await second.Grains.GetClaim("acme", "track:owner/a").Release("done");
        Assert.Equal(LeaseStatus.Active, (await second.Grains.GetClaim("acme", "track:owner/c").Acquire(request)).Lease.Status);
        // Owners are counted by the tenant grain from the claim index: no owner grain writes a row any more.
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM broker_grain_state WHERE state_name = 'owner'"));
    }
}
