using Microsoft.Extensions.Time.Testing;
using SandboxBroker.Storage;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>The delivery inbox on a real Postgres: record once, share work between processors, leases, retention.</summary>
public sealed class WebhookDeliveryStoreTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.Zero));
    private WebhookDeliveryStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _store = new WebhookDeliveryStore(_database.DataSource, _time);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private static NewDelivery Delivery(string id, string status = DeliveryStatus.Received) =>
        new(id, "issues", "opened", "octo/widgets", "{}"u8.ToArray(), status);

    [Fact]
    public async Task A_delivery_id_is_recorded_once_even_when_sent_concurrently()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => _store.RecordAsync(Delivery("d-1"), CancellationToken.None)));
        Assert.Single(results, r => r.Kind == RecordKind.New);
        Assert.Equal(19, results.Count(r => r.Kind == RecordKind.Duplicate));
        var row = await _store.GetAsync("d-1", CancellationToken.None);
        Assert.Equal(DeliveryStatus.Received, row!.Status);
        Assert.Equal(19, row.Redeliveries);
    }

    [Fact]
    public async Task Two_processors_never_hold_the_same_delivery_and_an_expired_lease_frees_it()
    {
        for (var i = 0; i < 30; i++)
        {
            await _store.RecordAsync(Delivery($"d-{i:00}"), CancellationToken.None);
        }
        var batches = await Task.WhenAll(
            _store.ClaimBatchAsync("a", 20, TimeSpan.FromMinutes(2), CancellationToken.None),
            _store.ClaimBatchAsync("b", 20, TimeSpan.FromMinutes(2), CancellationToken.None));
        var all = batches.SelectMany(b => b.Select(d => d.DeliveryId)).ToList();
        Assert.Equal(30, all.Count);
        Assert.Equal(30, all.Distinct().Count());
        Assert.Empty(await _store.ClaimBatchAsync("c", 50, TimeSpan.FromMinutes(2), CancellationToken.None));

        var held = batches[0][0];
        Assert.True(await _store.CompleteAsync(held.DeliveryId, "a", DeliveryStatus.Processed, "done", null, CancellationToken.None));
        Assert.False(await _store.CompleteAsync(batches[1][0].DeliveryId, "a", DeliveryStatus.Processed, "not mine", null, CancellationToken.None));

        _time.Advance(TimeSpan.FromMinutes(3)); // processors a and b "crashed": their leases run out
        var retaken = await _store.ClaimBatchAsync("c", 50, TimeSpan.FromMinutes(2), CancellationToken.None);
        Assert.Equal(29, retaken.Count);
        Assert.All(retaken, d => Assert.Equal(2, d.Attempts));
        Assert.False(await _store.CompleteAsync(retaken[0].DeliveryId, "a", DeliveryStatus.Processed, "late", null, CancellationToken.None));
    }

    [Fact]
    public async Task A_failed_delivery_is_queued_again_by_a_redelivery_and_a_processed_one_is_not()
    {
        await _store.RecordAsync(Delivery("ok"), CancellationToken.None);
        await _store.RecordAsync(Delivery("bad"), CancellationToken.None);
        await _store.ClaimBatchAsync("a", 10, TimeSpan.FromMinutes(1), CancellationToken.None);
        await _store.CompleteAsync("ok", "a", DeliveryStatus.Processed, "done", null, CancellationToken.None);
        await _store.CompleteAsync("bad", "a", DeliveryStatus.Failed, null, "boom", CancellationToken.None);

        Assert.Equal(new RecordResult(RecordKind.Duplicate, DeliveryStatus.Processed), await _store.RecordAsync(Delivery("ok"), CancellationToken.None));
        var again = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => _store.RecordAsync(Delivery("bad"), CancellationToken.None)));
        Assert.Single(again, r => r.Kind == RecordKind.Requeued);
        var requeued = await _store.ClaimBatchAsync("b", 10, TimeSpan.FromMinutes(1), CancellationToken.None);
        Assert.Equal("bad", Assert.Single(requeued).DeliveryId);
        Assert.Equal(1, requeued[0].Attempts);
    }

    [Fact]
    public async Task Postponed_deliveries_wait_and_retention_keeps_waiting_ones()
    {
        await _store.RecordAsync(Delivery("later"), CancellationToken.None);
        await _store.RecordAsync(Delivery("old-done", DeliveryStatus.Ignored), CancellationToken.None);
        await _store.ClaimBatchAsync("a", 10, TimeSpan.FromMinutes(1), CancellationToken.None);
        Assert.True(await _store.PostponeAsync("later", "a", _time.GetUtcNow().AddSeconds(30), "cluster away", CancellationToken.None));
        Assert.Empty(await _store.ClaimBatchAsync("a", 10, TimeSpan.FromMinutes(1), CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(31));
        Assert.Single(await _store.ClaimBatchAsync("a", 10, TimeSpan.FromMinutes(1), CancellationToken.None));

        _time.Advance(TimeSpan.FromDays(8));
        Assert.Equal(1, await _store.PruneAsync(_time.GetUtcNow() - TimeSpan.FromDays(7), CancellationToken.None));
        Assert.Null(await _store.GetAsync("old-done", CancellationToken.None));
        Assert.NotNull(await _store.GetAsync("later", CancellationToken.None));
    }
}
