using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Storage;
using SandboxBroker.Grains;
using SandboxBroker.Persistence;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// A grain the silo has just named with a new id (a pool's spare) starts empty without a read; the mark is a hint that
/// can never overwrite anything, because the grain's first write expects no row.
/// </summary>
public sealed class FreshGrainsTests
{
    [Fact]
    public async Task A_grain_marked_fresh_starts_empty_without_a_read_and_its_first_write_cannot_overwrite_a_stored_row()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var storage = broker.SiloService<IServiceProvider>().GetRequiredKeyedService<IGrainStorage>(StorageNames.Broker);
        var fresh = broker.SiloService<FreshGrains>();
        var grainId = GrainId.Create("probe", "marked-but-stored");
        var stored = new GrainState<ProbeState>(new ProbeState { Value = "stored" });
        await storage.WriteStateAsync("probe", grainId, stored);

        // Marked although a row exists (the worst case: an id reused): the activation starts empty, as no read was made...
        fresh.Mark(grainId);
        var marked = new GrainState<ProbeState>(new ProbeState());
        await storage.ReadStateAsync("probe", grainId, marked);
        Assert.False(marked.RecordExists);
        Assert.Null(marked.State!.Value);

        // ...and its first write, which expects no row, is refused: the stored row stays as it was.
        marked.State!.Value = "overwritten";
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("probe", grainId, marked));
        var reread = new GrainState<ProbeState>(new ProbeState());
        await storage.ReadStateAsync("probe", grainId, reread); // the mark is used once: this activation reads
        Assert.Equal("stored", reread.State!.Value);
    }

    [Fact]
    public async Task A_pools_spares_are_created_on_its_silo_without_a_read_of_their_new_ids()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var pool = broker.Grains.GetGrain<IPoolGrain>("fresh");
        await pool.Configure(new PoolConfig("fresh", "local", null, 6, 20, TimeSpan.FromHours(1), TimeSpan.FromHours(2), null, OnEmptyPolicy.Fail, 6));
        await Eventually.TrueAsync(async () => (await pool.GetStatus()).Levels.Ready == 6, "the pool has 6 ready sandboxes");

        // Every id the pool minted was taken by its sandbox's first activation on this (the only) silo.
        Assert.Equal(0, broker.SiloService<FreshGrains>().Count);
        var acquired = await broker.Grains.GetClaim("t", "track:fresh/a").Acquire(new AcquireRequest("fresh", "t", "o"));
        Assert.Equal(AcquireOutcome.Warm, acquired.Outcome);
        Assert.Equal(SandboxStatus.Leased, (await broker.Grains.GetGrain<ISandboxGrain>(acquired.Sandbox.SandboxId).Get())!.Status);
    }

    [Fact]
    public void A_mark_not_taken_within_its_lifetime_is_forgotten()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var fresh = new FreshGrains(time);
        var late = GrainId.Create("sandbox", "late");
        var prompt = GrainId.Create("sandbox", "prompt");
        fresh.Mark(late);
        fresh.Mark(prompt);
        Assert.True(fresh.TryTake(prompt));
        Assert.False(fresh.TryTake(prompt)); // once

        time.Advance(FreshGrains.Lifetime + TimeSpan.FromSeconds(1));
        Assert.False(fresh.TryTake(late)); // activated elsewhere, or never: it reads as usual
    }
}
