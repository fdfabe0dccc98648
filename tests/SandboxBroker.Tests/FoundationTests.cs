using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Runtime;
using Orleans.Storage;
using Orleans.TestingHost;
using SandboxBroker.Grains;
using SandboxBroker.Storage;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>The cluster stands on Postgres: membership, grain state and reminders survive a silo leaving.</summary>
public sealed class FoundationTests
{
    [Fact]
    public async Task Silos_form_a_cluster_in_the_membership_table_and_state_and_reminders_survive_a_silo_stop()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        var active = await broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM OrleansMembershipTable WHERE DeploymentId = $1 AND Status = 3", broker.Cluster.Options.ClusterId);
        Assert.Equal(2, active);

        // Find a key that lives on the second silo, so stopping that silo moves it. Fresh keys until one does: a silo
        // places activations by its own view of the cluster (its members, their load), which can lag the membership table.
        var secondary = broker.Cluster.Silos[1];
        var remaining = broker.Cluster.Silos[0];
        IProbeGrain? probe = null;
        var tried = 0;
        await Eventually.TrueAsync(async () =>
        {
            for (var end = tried + 20; probe is null && tried < end; tried++)
            {
                var candidate = broker.Grains.GetGrain<IProbeGrain>($"probe-{tried}");
                if ((await candidate.Read()).Silo == secondary.SiloAddress.ToString())
                {
                    probe = candidate;
                }
            }
            return probe is not null;
        }, "a probe is placed on the second silo");
        var moved = probe!;
        Assert.Equal(secondary.SiloAddress.ToString(), await moved.Write("written before the stop"));
        await moved.StartReminder();

        await broker.Cluster.StopSiloAsync(secondary);

        var (value, silo) = await moved.Read();
        Assert.Equal("written before the stop", value);
        Assert.Equal(remaining.SiloAddress.ToString(), silo);
        await Eventually.TrueAsync(async () => (await moved.Fired()).Contains(remaining.SiloAddress.ToString()),
            "the reminder registered before the stop fires on the remaining silo");
    }

    [Fact]
    public async Task A_writer_with_a_stale_version_is_rejected_with_InconsistentStateException()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var storage = ((InProcessSiloHandle)broker.Cluster.Silos[0]).SiloHost!.Services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Broker);
        var grainId = GrainId.Create("probe", "stale-etag");
        var first = new GrainState<ProbeState>(new ProbeState());
        var second = new GrainState<ProbeState>(new ProbeState());
        await storage.ReadStateAsync("probe", grainId, first);
        await storage.ReadStateAsync("probe", grainId, second);
        Assert.Equal(first.ETag, second.ETag);

        first.State!.Value = "first";
        await storage.WriteStateAsync("probe", grainId, first);
        second.State!.Value = "second";
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("probe", grainId, second));

        var reread = new GrainState<ProbeState>(new ProbeState());
        await storage.ReadStateAsync("probe", grainId, reread);
        Assert.Equal("first", reread.State!.Value);
        // And the winner goes on writing with its own version.
        first.State!.Value = "first again";
        await storage.WriteStateAsync("probe", grainId, first);
    }

    [Fact]
    public async Task The_schema_applies_twice_without_error_and_the_second_run_changes_nothing()
    {
        await using var database = await TestDatabase.CreateAsync(); // applied once here
        var migrator = new SchemaMigrator(database.DataSource, NullLogger<SchemaMigrator>.Instance);
        Assert.Equal(0, await migrator.ApplyAsync());
        // Each file is idempotent by itself too (an operator may run them with psql).
        foreach (var (_, sql) in SchemaMigrator.Scripts)
        {
            await using var command = database.DataSource.CreateCommand(sql);
            await command.ExecuteNonQueryAsync();
        }
        var queries = await database.ScalarAsync<long>("SELECT count(*) FROM OrleansQuery WHERE QueryKey = 'CleanupDefunctSiloEntriesKey'");
        Assert.Equal(1, queries);
        Assert.Equal(SchemaMigrator.Scripts.Count, (int)await database.ScalarAsync<long>("SELECT count(*) FROM broker_schema_migrations"));
    }

    [Fact]
    public async Task The_audit_log_is_append_only()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using (var insert = database.DataSource.CreateCommand("INSERT INTO broker_audit_log (entity_type, entity_id, event) VALUES ('sandbox', 'x', 'test')"))
        {
            await insert.ExecuteNonQueryAsync();
        }
        await using var update = database.DataSource.CreateCommand("UPDATE broker_audit_log SET event = 'rewritten'");
        await Assert.ThrowsAsync<PostgresException>(() => update.ExecuteNonQueryAsync());
    }
}
