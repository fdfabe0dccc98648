using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>The audit log stays bounded: touches are coalesced, and rows past the retention are deleted by the cluster's one reminder.</summary>
public sealed class AuditRetentionTests
{
    [Fact]
    public async Task Rows_past_the_retention_are_deleted_by_the_reminder_and_newer_rows_stay()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings: new Dictionary<string, string?>
        {
            ["Broker:AuditPrunePeriod"] = "00:00:01", // the default retention (30 days) stays
        });
        var db = broker.Database;
        var key = $"test:audit-{Guid.NewGuid():N}";
        await broker.Grains.GetClaim("t", key).Acquire(new AcquireRequest("default", "t", "o"));
        var recent = await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1", ClaimId.Of("t", key));
        Assert.True(recent > 0);

        var old = $"test:old-{Guid.NewGuid():N}";
        foreach (var daysAgo in new[] { 31, 45, 400 })
        {
            await db.ScalarAsync<long>("""
                INSERT INTO broker_audit_log (occurred_at, entity_type, entity_id, event) VALUES (now() - make_interval(days => $2), 'claim', $1, 'lease.touched')
                RETURNING id
                """, old, daysAgo);
        }
        var before = await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log");

        // No call: the reminder the silo registered at start does it.
        await Eventually.TrueAsync(async () => await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1", old) == 0,
            "the rows older than 30 days are deleted");
        Assert.True(await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log") < before);
        Assert.Equal(recent, await db.ScalarAsync<long>("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1", ClaimId.Of("t", key)));
        Assert.Equal(0, await broker.Grains.GetGrain<IAuditRetentionGrain>(IAuditRetentionGrain.Key).Prune());
    }

    [Fact]
    public async Task Touches_within_the_interval_append_one_audit_row()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var key = $"test:touch-{Guid.NewGuid():N}";
        var claim = broker.Grains.GetClaim("t", key);
        await claim.Acquire(new AcquireRequest("default", "t", "o"));
        for (var i = 0; i < 20; i++)
        {
            await claim.Touch();
        }
        Assert.Equal(1, await broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.touched'", ClaimId.Of("t", key)));
        // Every touch still counts as activity.
        var lease = await claim.Get();
        Assert.NotNull(lease);
        Assert.True(lease.LastActivityAt > lease.AcquiredAt);
    }
}
