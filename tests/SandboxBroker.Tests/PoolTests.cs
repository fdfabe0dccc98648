using Orleans.Core.Internal;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>Warm pools: min ready is reached and kept, warm sandboxes go first, max total holds.</summary>
public sealed class PoolTests
{
    private static PoolConfig Config(string name, int minReady, int maxTotal, OnEmptyPolicy onEmpty) =>
        new(name, "local", null, minReady, maxTotal, TimeSpan.FromHours(1), TimeSpan.FromHours(2), null, onEmpty, 4);

    [Fact]
    public async Task Min_ready_is_reached_and_kept_and_acquires_take_warm_sandboxes_first()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        var pool = broker.Grains.GetGrain<IPoolGrain>("warm");
        await pool.Configure(Config("warm", minReady: 3, maxTotal: 20, OnEmptyPolicy.Create));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 3, "the pool has 3 ready sandboxes");
        var warm = broker.ProviderSandboxes().ToHashSet();
        Assert.Equal(3, warm.Count);

        var first = await broker.Grains.GetClaim("t", "track:warm/a").Acquire(new AcquireRequest("warm", "t", "o"));
        Assert.Equal(AcquireOutcome.Warm, first.Outcome);
        Assert.Contains(first.Sandbox.SandboxId, warm);

        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels is { Ready: 3, Leased: 1 }, "the pool tops back up to 3 ready");
        Assert.Contains("warm", await broker.Grains.GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).List());
    }

    /// <summary>
    /// A pool stores only its configuration: a new activation reads its ready and provisioning sandboxes back from the
    /// index (which every sandbox writes with its own state), so nothing is lost, created again or handed out twice.
    /// </summary>
    [Fact]
    public async Task A_new_activation_of_a_pool_reads_its_sandboxes_back_from_the_index()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var pool = broker.Grains.GetGrain<IPoolGrain>("again");
        await pool.Configure(Config("again", minReady: 8, maxTotal: 50, OnEmptyPolicy.Fail));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 8, "the pool has 8 ready sandboxes");
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            broker.Grains.GetClaim("t", $"track:again/{i}").Acquire(new AcquireRequest("again", "t", $"o{i}"))));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels is { Ready: 8, Leased: 3, Provisioning: 0 }, "the pool tops back up");
        var readyBefore = broker.ProviderSandboxes().ToHashSet();
        Assert.Equal(11, readyBefore.Count);

        var management = broker.Grains.GetGrain<IManagementGrain>(0);
        await management.ForceActivationCollection(TimeSpan.Zero);
        var pools = (await management.GetSimpleGrainStatistics()).Where(s => s.GrainType.Contains(nameof(Grains.PoolGrain), StringComparison.Ordinal));
        Assert.Equal(0, pools.Sum(s => s.ActivationCount));

        // The new activation knows the same 8 ready and 3 leased sandboxes, and creates none.
        Assert.Equal((8, 3, 11), await Levels(pool));
        var acquired = await Task.WhenAll(Enumerable.Range(3, 8).Select(i =>
            broker.Grains.GetClaim("t", $"track:again/{i}").Acquire(new AcquireRequest("again", "t", $"o{i}"))));
        Assert.All(acquired, a => Assert.Equal(AcquireOutcome.Warm, a.Outcome));
        Assert.Equal(8, acquired.Select(a => a.Sandbox.SandboxId).Distinct().Count());
        Assert.All(acquired, a => Assert.Contains(a.Sandbox.SandboxId, readyBefore));

        static async Task<(int, int, int)> Levels(IPoolGrain pool) =>
            (await pool.GetStatus()).Levels is var l ? (l.Ready, l.Leased, l.Total) : default;
    }

    /// <summary>
    /// A pool counts the sandboxes it no longer lists (leased, deleting) from their notices, and reads the counts back from
    /// the index when it activates (and at its upkeep), while notices keep coming: one whose move the count already holds
    /// must not count twice, and one the count missed must not be lost. Here the notices are held in flight while the
    /// pool's activation is replaced, so the new one counts from the index moves whose notices arrive after; once every
    /// deletion is stored, the pool counts exactly the leases still held and nothing deleting, at once, not at its next
    /// upkeep (set to ten minutes here).
    /// </summary>
    [Fact]
    public async Task Counts_read_back_while_notices_are_in_flight_end_exact()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1, new Dictionary<string, string?> { ["Broker:RetryReminderPeriod"] = "00:10:00" });
        var pool = broker.Grains.GetGrain<IPoolGrain>("churn");
        // The "gated" provider holds every delete until the gate opens: the 20 sandboxes are certainly still deleting
        // when the new activation counts them, however slow the machine.
        await pool.Configure(Config("churn", minReady: 30, maxTotal: 200, OnEmptyPolicy.Fail) with { Provider = "gated" });
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 30, "the pool has 30 ready sandboxes");
        var claims = Enumerable.Range(0, 30).Select(i => broker.Grains.GetClaim("t", $"track:churn/{i}")).ToList();
        await Task.WhenAll(claims.Select((claim, i) => claim.Acquire(new AcquireRequest("churn", "t", $"o{i}"))));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels is { Ready: 30, Leased: 30, Provisioning: 0 }, "the pool tops back up");

        // 20 of the 30 are released; each notice (to deleting, then to deleted) spends two seconds in flight.
        broker.SiloService<CallFaults>().Delay("IPoolGrain.OnSandboxStatus", TimeSpan.FromSeconds(2));
        var releases = Task.WhenAll(claims.Skip(10).Select(claim => claim.Release("done")));
        await Eventually.TrueAsync(async () => await CountAsync("deleting") == 20, "the 20 releases are stored");
        // A new activation counts them as deleting; then their notices of that move arrive, and later those of their deletion.
        await pool.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        Assert.Equal(new PoolLevels(30, 0, 10, 20, 60), (await pool.GetStatus()).Levels);
        await releases;
        var gate = broker.SiloService<GatedProvider>();
        await Eventually.TrueAsync(() => gate.Waiting == 20, "the 20 deletes wait at the provider");
        gate.Open();
        await Eventually.TrueAsync(async () => await CountAsync("deleted") == 20, "the 20 sandboxes are deleted");

        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels is { Leased: 10, Deleting: 0 },
            "the pool counts the 10 leases still held and nothing deleting", TimeSpan.FromSeconds(15));
        Assert.Equal(new PoolLevels(30, 0, 10, 0, 40), (await pool.GetStatus()).Levels);

        Task<long> CountAsync(string status) => broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM broker_sandboxes WHERE pool = 'churn' AND status = $1", status);
    }

    [Fact]
    public async Task With_the_fail_policy_an_empty_pool_says_no_sandboxes_available()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        await broker.Grains.GetGrain<IPoolGrain>("strict").Configure(Config("strict", minReady: 0, maxTotal: 5, OnEmptyPolicy.Fail));
        var e = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetClaim("t", "track:strict/a").Acquire(new AcquireRequest("strict", "t", "o")));
        Assert.Equal(ErrorCodes.NoSandboxesAvailable, e.Code);
        Assert.NotNull(e.RetryAfterSeconds);
        // Nothing was held by the failed attempt: the owner's count and the claim are clean.
        Assert.Empty((await broker.Grains.GetGrain<ITenantGrain>("t").GetOwnerUsage("o")).ActiveClaims);
        Assert.Null(await broker.Grains.GetClaim("t", "track:strict/a").Get());
    }

    [Fact]
    public async Task Shrinking_a_pool_answers_at_once_and_deletes_the_surplus_at_the_provider()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var pool = broker.Grains.GetGrain<IPoolGrain>("shrink");
        await pool.Configure(Config("shrink", minReady: 12, maxTotal: 20, OnEmptyPolicy.Create));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 12, "the pool has 12 ready sandboxes");

        await pool.Configure(Config("shrink", minReady: 0, maxTotal: 2, OnEmptyPolicy.Create));

        var levels = (await pool.GetStatus()).Levels;
        Assert.Equal((2, 10), (levels.Ready, levels.Deleting)); // the surplus left the pool before Configure answered
        await Eventually.TrueAsync(() => broker.ProviderSandboxes().Count == 2, "the provider keeps only the 2 sandboxes the pool still holds");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels is { Ready: 2, Deleting: 0, Total: 2 }, "the pool hears the deletions");
    }

    [Fact]
    public async Task Max_total_is_never_exceeded_under_concurrency()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 2);
        await broker.Grains.GetGrain<IPoolGrain>("small").Configure(Config("small", minReady: 2, maxTotal: 6, OnEmptyPolicy.Create));
        // A tenant per key: the pool's limit is under test, not a tenant's share of it.
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 30).Select(async i =>
        {
            try
            {
                await broker.Grains.GetClaim($"t{i}", $"track:small/{i}").Acquire(new AcquireRequest("small", $"t{i}", "o"));
                return true;
            }
            catch (BrokerException e) when (e.Code == ErrorCodes.NoSandboxesAvailable)
            {
                return false;
            }
        }));
        // Never more than 6. Fewer may succeed at once: sandboxes the pool was warming count towards the 6
        // and become ready after some acquires were refused; those go to the next acquires.
        var first = outcomes.Count(ok => ok);
        Assert.InRange(first, 1, 6);
        Assert.True(broker.ProviderSandboxes().Count <= 6, $"{broker.ProviderSandboxes().Count} sandboxes at the provider");
        var pool = broker.Grains.GetGrain<IPoolGrain>("small");
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Provisioning == 0, "the pool's creates finish");
        var late = 0;
        foreach (var i in Enumerable.Range(0, 30).Where(i => !outcomes[i]))
        {
            try
            {
                await broker.Grains.GetClaim($"t{i}", $"track:small/{i}").Acquire(new AcquireRequest("small", $"t{i}", "o"));
                late++;
            }
            catch (BrokerException e) when (e.Code == ErrorCodes.NoSandboxesAvailable)
            {
            }
        }
        Assert.Equal(6, first + late);
        Assert.Equal(6, broker.ProviderSandboxes().Count);
        var status = await pool.GetStatus();
        Assert.True(status.Levels.Total <= 6, $"total {status.Levels.Total}");
    }

    [Fact]
    public async Task A_bad_pool_configuration_is_refused_with_the_field_at_fault()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var e = await Assert.ThrowsAsync<BrokerException>(() =>
            broker.Grains.GetGrain<IPoolGrain>("bad").Configure(Config("bad", minReady: 10, maxTotal: 2, OnEmptyPolicy.Create)));
        Assert.Equal((ErrorCodes.InvalidArgument, "min_ready"), (e.Code, e.Field));
        var unknown = await Assert.ThrowsAsync<BrokerException>(() => broker.Grains.GetGrain<IPoolGrain>("never-made").GetConfig());
        Assert.Equal(ErrorCodes.NotFound, unknown.Code);
    }
}
