using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using SandboxBroker.Persistence;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// Joint writes (a warm lease and its sandbox's `leased` state): the first half is held in the silo's writer until its
/// partner takes it along, and the two are stored in one transaction or not at all, without failing their neighbours.
/// A holder whose partner is elsewhere sends its write alone; one whose partner failed takes it back, storing nothing.
/// </summary>
public sealed class GroupCommitJointWritesTests
{
    private const string Service = "svc";

    [Fact]
    public async Task The_two_halves_are_stored_in_one_transaction_once_the_second_arrives()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);

        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1")));
        await Task.Delay(300); // a writer that sent it alone would have answered by now
        Assert.False(held.IsCompleted, "the held half was sent before its partner arrived");
        Assert.True(writer.Holds("lease-1"));
        Assert.Equal((0L, 0L), writer.Counters);

        Assert.Equal(1, await writer.WriteAsync(Write("sandbox", "s", Completes("lease-1"))));
        Assert.Equal(1, await held);
        Assert.False(writer.Holds("lease-1"));
        Assert.Equal((1L, 2L), writer.Counters);
        Assert.Equal(await TransactionOf(db, "claim", "c"), await TransactionOf(db, "sandbox", "s"));
    }

    [Fact]
    public async Task A_conflict_on_either_half_stores_neither_and_its_neighbour_in_the_batch_commits()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db, maxWait: TimeSpan.FromHours(1));
        Assert.Equal(1, await writer.WriteAsync(Write("sandbox", "s"))); // so a first write of "s" is stale

        // The neighbour waits for the next batch, which the joint write starts: they go in one batch.
        var neighbour = writer.WriteAsync(Write("pool", "p", canWait: true));
        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1")));
        var completing = writer.WriteAsync(Write("sandbox", "s", Completes("lease-1")));

        Assert.Null(await completing);
        Assert.Null(await held);
        Assert.Equal(1, await neighbour);
        Assert.Null(await writer.ReadAsync("claim", "c"));
        Assert.Equal(1, (await writer.ReadAsync("sandbox", "s"))!.Version);
        Assert.NotNull(await writer.ReadAsync("pool", "p"));
    }

    [Fact]
    public async Task A_conflict_on_the_held_half_stores_neither()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);
        Assert.Equal(1, await writer.WriteAsync(Write("claim", "c")));

        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1"), expected: 7)); // a stale activation's write
        Assert.Null(await writer.WriteAsync(Write("sandbox", "s", Completes("lease-1"))));
        Assert.Null(await held);
        Assert.Null(await writer.ReadAsync("sandbox", "s"));
        Assert.Equal(1, (await writer.ReadAsync("claim", "c"))!.Version);
    }

    [Fact]
    public async Task A_withdrawn_half_stores_nothing_and_its_late_partner_fails_without_storing()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);

        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1")));
        Assert.True(writer.Withdraw("lease-1"));
        await Assert.ThrowsAsync<JointWriteWithdrawnException>(() => held);
        Assert.False(writer.Withdraw("lease-1"));

        await Assert.ThrowsAsync<JointWriteWithdrawnException>(() => writer.WriteAsync(Write("sandbox", "s", Completes("lease-1"))));
        Assert.Null(await writer.ReadAsync("claim", "c"));
        Assert.Null(await writer.ReadAsync("sandbox", "s"));
    }

    [Fact]
    public async Task A_released_half_is_stored_alone_and_cannot_be_taken_back()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);

        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1")));
        Assert.True(writer.Release("lease-1"));
        Assert.Equal(1, await held);
        Assert.False(writer.Withdraw("lease-1"));
        Assert.False(writer.Release("lease-1"));
        Assert.NotNull(await writer.ReadAsync("claim", "c"));
    }

    [Fact]
    public async Task A_half_taken_along_cannot_be_withdrawn()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db);

        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1")));
        var completing = writer.WriteAsync(Write("sandbox", "s", Completes("lease-1")));
        Assert.False(writer.Withdraw("lease-1"));
        Assert.Equal((1, 1), (await held, await completing));
    }

    [Fact]
    public async Task Held_halves_fail_without_being_stored_when_the_writer_stops()
    {
        await using var db = await TestDatabase.CreateAsync();
        var writer = Writer(db);
        var held = writer.WriteAsync(Write("claim", "c", Held("lease-1")));

        await writer.DisposeAsync();

        await Assert.ThrowsAsync<JointWriteWithdrawnException>(() => held);
        await using var reader = Writer(db);
        Assert.Null(await reader.ReadAsync("claim", "c"));
    }

    /// <summary>The transaction that last wrote a grain's row.</summary>
    private static async Task<long> TransactionOf(TestDatabase db, string state, string key) =>
        await db.ScalarAsync<long>("SELECT xmin::text::bigint FROM broker_grain_state WHERE service_id = $1 AND state_name = $2 AND grain_key = $3",
            Service, state, key);

    private static JointWriteMark Held(string key) => new(key, Holds: true);

    private static JointWriteMark Completes(string key) => new(key, Holds: false);

    private static GroupCommitWriter Writer(TestDatabase db, TimeSpan? maxWait = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString) { ApplicationName = "group-commit-joint-test" };
        return new GroupCommitWriter(NpgsqlDataSource.Create(builder.ConnectionString), Service,
            Options.Create(new GroupCommitOptions { MaxWait = maxWait ?? TimeSpan.Zero }), NullLogger<GroupCommitWriter>.Instance, new StorageTelemetry());
    }

    private static WriteOperation Write(string state, string key, JointWriteMark? joint = null, int? expected = null, bool canWait = false) =>
        new(state, key, expected, System.Text.Encoding.UTF8.GetBytes(key), null, [], canWait, joint);
}
