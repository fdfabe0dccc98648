using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using SandboxBroker.Persistence;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// Writes nobody waits on (a pool's spare, a deletion under way) ride with the silo's next batch instead of costing a
/// transaction each, go alone after the writer's max wait when nothing else is written, and are never lost when the
/// writer stops: they are acknowledged, as every write, only once committed.
/// </summary>
public sealed class GroupCommitWaitingWritesTests
{
    private const string Service = "svc";

    [Fact]
    public async Task A_write_that_can_wait_goes_with_the_next_batch_in_one_transaction()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db, TimeSpan.FromHours(1));

        var waiting = writer.WriteAsync(Write("sandbox", "spare", canWait: true));
        await Task.Delay(300); // a writer that sent it alone would have answered by now
        Assert.False(waiting.IsCompleted, "a write that can wait started a batch of its own");

        var urgent = await writer.WriteAsync(Write("claim", "key", canWait: false));
        Assert.Equal(1, urgent);
        Assert.Equal(1, await waiting);
        Assert.Equal((1L, 2L), writer.Counters); // one batch (one round trip, one transaction) carried both
        Assert.NotNull(await writer.ReadAsync("sandbox", "spare"));
    }

    [Fact]
    public async Task A_write_that_can_wait_goes_alone_after_the_max_wait_when_nothing_else_is_written()
    {
        await using var db = await TestDatabase.CreateAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var writer = Writer(db, TimeSpan.FromMilliseconds(50), time);

        var waiting = writer.WriteAsync(Write("sandbox", "spare", canWait: true));
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted, "the write went before its max wait was up");

        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.NotNull(await writer.ReadAsync("sandbox", "spare"));

        // The next one waits again (the max wait is per write, not once per writer).
        var next = writer.WriteAsync(Write("sandbox", "spare-2", canWait: true));
        await Task.Delay(300);
        Assert.False(next.IsCompleted, "the second write went before its max wait was up");
        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, await next.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Writes_still_waiting_when_the_writer_stops_are_committed_before_it_stops()
    {
        await using var db = await TestDatabase.CreateAsync();
        var writer = Writer(db, TimeSpan.FromHours(1));
        var waiting = Enumerable.Range(0, 20).Select(i => writer.WriteAsync(Write("sandbox", $"spare-{i}", canWait: true))).ToList();

        await writer.DisposeAsync();

        Assert.All(await Task.WhenAll(waiting), version => Assert.Equal(1, version));
        await using var reader = Writer(db, TimeSpan.Zero);
        foreach (var i in Enumerable.Range(0, 20))
        {
            Assert.NotNull(await reader.ReadAsync("sandbox", $"spare-{i}"));
        }
    }

    [Fact]
    public async Task A_write_that_can_wait_keeps_its_version_check()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var writer = Writer(db, TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, await writer.WriteAsync(Write("sandbox", "s", canWait: true)));
        // A second first write of the same grain (a stale activation) is refused, waiting or not.
        Assert.Null(await writer.WriteAsync(Write("sandbox", "s", canWait: true)));
    }

    private static GroupCommitWriter Writer(TestDatabase db, TimeSpan maxWait, TimeProvider? time = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString) { ApplicationName = "group-commit-wait-test" };
        return new GroupCommitWriter(NpgsqlDataSource.Create(builder.ConnectionString), Service,
            Options.Create(new GroupCommitOptions { MaxWait = maxWait }), NullLogger<GroupCommitWriter>.Instance, new StorageTelemetry(), time);
    }

    private static WriteOperation Write(string state, string key, bool canWait) =>
        new(state, key, null, System.Text.Encoding.UTF8.GetBytes(key), null, [], canWait);
}
