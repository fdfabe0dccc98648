using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Gateway.Api;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Api;

/// <summary>Admission control: above its in-flight limit the gateway refuses acquires at once instead of queueing them.</summary>
public sealed class AdmissionTests
{
    [Fact]
    public async Task Keys_over_the_limit_are_refused_with_503_OVERLOADED_and_admitted_again_once_one_finishes()
    {
        var admission = new AcquireAdmission(maxInFlight: 2);
        var first = new TaskCompletionSource<int>();
        var second = new TaskCompletionSource<int>();
        var a = admission.RunAsync("t", "k1", () => first.Task);
        var b = admission.RunAsync("t", "k2", () => second.Task);
        Assert.Equal(2, admission.InFlight);

        var refused = await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "k3", () => Task.FromResult(3)));
        Assert.Equal((503, "OVERLOADED", 1), (refused.Error.Status, refused.Error.Code, refused.Error.RetryAfterSeconds));
        Assert.Equal(2, admission.InFlight);

        first.SetResult(1);
        Assert.Equal(1, await a);
        Assert.Equal(4, await admission.RunAsync("t", "k3", () => Task.FromResult(4)));
        second.SetException(new InvalidOperationException("the call failed"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => b);
        Assert.Equal(0, admission.InFlight); // a failed call gives its slot back too
    }

    [Fact]
    public async Task The_look_before_the_body_refuses_what_the_admission_would_and_takes_no_slot()
    {
        var clock = Clock();
        var admission = new AcquireAdmission(maxInFlight: 1, recent: new RecentLeases(clock), maxRepeatsInFlight: 1);
        Assert.Null(admission.RefusalNow("t", "k1"));
        Assert.Equal(0, admission.InFlight); // a look, not an admission

        var held = new TaskCompletionSource<int>();
        var inFlight = admission.RunAsync("t", "k1", () => held.Task);
        var refused = admission.RefusalNow("t", "k2");
        Assert.Equal((503, "OVERLOADED", 1), (refused?.Status, refused?.Code, refused?.RetryAfterSeconds));
        Assert.NotNull(admission.RefusalNow("u", "k2")); // the total is full for every tenant
        Assert.Null(admission.RefusalNow("t", "k1")); // the same key joins the acquire in flight
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "k2", () => Task.FromResult(0)));

        // Repeats are looked at in their own lane.
        admission.Remember("t", "leased", clock.GetUtcNow().AddHours(1));
        Assert.Null(admission.RefusalNow("t", "leased"));
        var repeat = admission.RunAsync("t", "leased", () => held.Task);
        Assert.Contains("repeated", admission.RefusalNow("t", "leased")?.Message);

        held.SetResult(1);
        await Task.WhenAll(inFlight, repeat);
        Assert.Null(admission.RefusalNow("t", "k2"));
        Assert.Null(admission.RefusalNow("t", "leased"));
    }

    [Fact]
    public async Task Concurrent_acquires_of_one_key_take_one_slot_and_are_never_refused()
    {
        var admission = new AcquireAdmission(maxInFlight: 1);
        var held = new TaskCompletionSource<int>();
        var sameKey = Enumerable.Range(0, 500).Select(_ => admission.RunAsync("t", "track-1", () => held.Task)).ToList();
        Assert.Equal(1, admission.InFlight);
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "track-2", () => Task.FromResult(0)));

        held.SetResult(9);
        Assert.All(await Task.WhenAll(sameKey), r => Assert.Equal(9, r));
        Assert.Equal(0, admission.InFlight);
        Assert.Equal(5, await admission.RunAsync("t", "track-2", () => Task.FromResult(5)));
    }

    [Fact]
    public async Task An_acquire_is_told_it_is_a_likely_repeat_only_for_a_claim_this_gateway_saw_leased()
    {
        // The claim leases without reading its state first only when the gateway expects the key to be new.
        var clock = Clock();
        var admission = new AcquireAdmission(maxInFlight: 4, recent: new RecentLeases(clock));
        Task<bool> ToldLikelyRepeat(string tenant) => admission.RunAsync(tenant, "k", likelyRepeat => Task.FromResult(likelyRepeat));
        Assert.False(await ToldLikelyRepeat("t"));

        admission.Remember("t", "k", clock.GetUtcNow().AddHours(1));
        Assert.True(await ToldLikelyRepeat("t"));
        Assert.False(await ToldLikelyRepeat("u")); // another tenant's key

        admission.Ended("t", "k");
        Assert.False(await ToldLikelyRepeat("t"));
    }

    [Fact]
    public async Task Repeats_of_leased_claims_do_not_take_the_new_lease_slots_and_end_when_the_lease_ends()
    {
        var clock = Clock();
        var admission = new AcquireAdmission(maxInFlight: 1, recent: new RecentLeases(clock), maxRepeatsInFlight: 2);
        var recent = Enumerable.Range(0, 3).Select(i => $"leased-{i}").ToList();
        foreach (var key in recent)
        {
            admission.Remember("t", key, clock.GetUtcNow().AddHours(1));
        }
        var held = new TaskCompletionSource<int>();
        var newLease = admission.RunAsync("t", "new-0", () => held.Task);

        // The one new-lease slot is taken; repeats of leased claims still go, up to their own lane's limit.
        var repeats = recent.Take(2).Select(key => admission.RunAsync("t", key, () => held.Task)).ToList();
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "new-1", () => Task.FromResult(0)));
        var full = await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", recent[2], () => Task.FromResult(0)));
        Assert.Contains("repeated", full.Error.Message);
        held.SetResult(1);
        await Task.WhenAll(repeats.Append(newLease));

        // A lease that ended through this gateway, or whose deadline passed, is a new lease again: it takes the slot.
        admission.Ended("t", recent[0]);
        var slot = new TaskCompletionSource<int>();
        var again = admission.RunAsync("t", recent[0], () => slot.Task);
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "new-2", () => Task.FromResult(0)));
        slot.SetResult(2);
        await again;
        clock.Advance(TimeSpan.FromHours(2));
        var late = new TaskCompletionSource<int>();
        var expired = admission.RunAsync("t", recent[1], () => late.Task);
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "new-3", () => Task.FromResult(0)));
        late.SetResult(3);
        await expired;
    }

    [Fact]
    public async Task One_busy_tenant_cannot_take_every_slot_and_a_second_tenant_gets_its_share_at_once()
    {
        var admission = new AcquireAdmission(maxInFlight: 10, minPerTenant: 2);
        var held = new TaskCompletionSource<int>();
        // Alone, a tenant may hold all but the reserve.
        var busy = new List<Task<int>>();
        for (var i = 0; i < 8; i++)
        {
            busy.Add(admission.RunAsync("busy", $"k{i}", () => held.Task));
        }
        var over = await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("busy", "k8", () => Task.FromResult(0)));
        Assert.Equal((503, "OVERLOADED"), (over.Error.Status, over.Error.Code));
        Assert.Contains("fair share", over.Error.Message);

        // A second tenant finds the reserve free at once, while the busy one is held to half of what is left.
        var quiet = new[] { admission.RunAsync("quiet", "q0", () => held.Task), admission.RunAsync("quiet", "q1", () => held.Task) };
        Assert.Equal(10, admission.InFlight);
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("quiet", "q2", () => Task.FromResult(0)));
        Assert.Equal(4, admission.FairShare(activeTenants: 2));

        // As the busy tenant's acquires finish it is not admitted again above its share; the quiet one is, up to it.
        held.SetResult(1);
        await Task.WhenAll(busy.Concat(quiet));
        Assert.Equal(0, admission.InFlight);
        var again = new TaskCompletionSource<int>();
        var quietNow = Enumerable.Range(0, 4).Select(i => admission.RunAsync("quiet", $"k{i}", () => again.Task)).ToList();
        var busyNow = Enumerable.Range(0, 4).Select(i => admission.RunAsync("busy", $"k{i}", () => again.Task)).ToList();
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("busy", "k4", () => Task.FromResult(0)));
        await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("quiet", "k4", () => Task.FromResult(0)));
        // The same key of two tenants is two claims: two slots.
        Assert.Equal(8, admission.InFlight);
        again.SetResult(2);
        await Task.WhenAll(quietNow.Concat(busyNow));
    }

    [Fact]
    public async Task A_refused_acquire_waits_for_a_slot_and_the_longest_waiting_gets_the_next_one()
    {
        var admission = Queueing(maxQueued: 2, TimeSpan.FromMilliseconds(250), out _);
        var held = new TaskCompletionSource<int>();
        var first = admission.RunAsync("t", "k1", () => held.Task);
        var calls = new List<string>();
        var second = admission.RunAsync("t", "k2", () => { calls.Add("k2"); return Task.FromResult(2); });
        var third = admission.RunAsync("t", "k3", () => { calls.Add("k3"); return Task.FromResult(3); });
        Assert.Equal((1, 2), (admission.InFlight, admission.Queued));
        Assert.Empty(calls); // waiting, not running
        Assert.False(second.IsCompleted);

        // A third waiter finds the queue full: refused at once, saying so; the look before the body agrees.
        var refused = await Assert.ThrowsAsync<ApiErrorException>(() => admission.RunAsync("t", "k4", () => Task.FromResult(4)));
        Assert.Equal((503, "OVERLOADED"), (refused.Error.Status, refused.Error.Code));
        Assert.Contains("2 more are waiting", refused.Error.Message);
        Assert.NotNull(admission.RefusalNow("t", "k4"));

        held.SetResult(1);
        Assert.Equal((1, 2, 3), (await first, await second, await third));
        Assert.Equal(["k2", "k3"], calls); // in the order they arrived
        Assert.Equal((0, 0), (admission.InFlight, admission.Queued));
    }

    [Fact]
    public async Task A_wait_that_runs_out_is_refused_with_503_OVERLOADED_and_leaves_no_trace()
    {
        var admission = Queueing(maxQueued: 4, TimeSpan.FromMilliseconds(250), out var clock);
        var held = new TaskCompletionSource<int>();
        var first = admission.RunAsync("t", "k1", () => held.Task);
        Assert.Null(admission.RefusalNow("t", "k2")); // there is room to wait
        var ran = false;
        var waiting = admission.RunAsync("t", "k2", () => { ran = true; return Task.FromResult(2); });

        clock.Advance(TimeSpan.FromMilliseconds(249));
        Assert.False(waiting.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        var refused = await Assert.ThrowsAsync<ApiErrorException>(() => waiting);
        Assert.Equal((503, "OVERLOADED", 1), (refused.Error.Status, refused.Error.Code, refused.Error.RetryAfterSeconds));
        Assert.Contains("no slot came free within 250 ms", refused.Error.Message);
        Assert.False(ran);
        Assert.Equal((1, 0), (admission.InFlight, admission.Queued));

        // The slot the refused one waited for goes to nobody: it is free once the first is done.
        held.SetResult(1);
        await first;
        Assert.Equal(0, admission.InFlight);
        Assert.Equal(5, await admission.RunAsync("t", "k5", () => Task.FromResult(5)));
    }

    [Fact]
    public async Task A_cancelled_request_stops_waiting_and_takes_no_slot()
    {
        var admission = Queueing(maxQueued: 4, TimeSpan.FromSeconds(1), out _);
        var held = new TaskCompletionSource<int>();
        var first = admission.RunAsync("t", "k1", () => held.Task);
        using var gone = new CancellationTokenSource();
        var waiting = admission.RunAsync("t", "k2", () => Task.FromResult(2), gone.Token);
        gone.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal((1, 0), (admission.InFlight, admission.Queued));
        held.SetResult(1);
        await first;
        Assert.Equal(0, admission.InFlight);
    }

    [Fact]
    public async Task A_waiter_handed_a_slot_as_its_request_is_cancelled_still_gives_the_slot_back()
    {
        // Off the test framework's synchronization context, so the first acquire's end hands its slot to the waiter on this
        // thread, and the cancellation right after it finds the slot already handed over.
        await Task.Run(async () =>
        {
            var admission = new AcquireAdmission(maxInFlight: 1, maxQueued: 4, queueTimeout: TimeSpan.FromSeconds(30));
            var held = new TaskCompletionSource<int>();
            var first = admission.RunAsync("t", "k1", () => held.Task);
            using var gone = new CancellationTokenSource();
            var waiting = admission.RunAsync("t", "k2", () => Task.FromResult(2), gone.Token);

            held.SetResult(1);
            gone.Cancel();
            await first;
            try
            {
                await waiting; // it went on with its slot, or it was cancelled while still queued
            }
            catch (OperationCanceledException)
            {
            }
            Assert.Equal((0, 0), (admission.InFlight, admission.Queued)); // no slot lost either way
            Assert.Equal(3, await admission.RunAsync("t", "k3", () => Task.FromResult(3)));
        });
    }

    [Fact]
    public async Task A_waiter_its_tenants_share_holds_back_does_not_hold_back_another_tenants_waiter()
    {
        var admission = new AcquireAdmission(maxInFlight: 4, minPerTenant: 2, maxQueued: 8, queueTimeout: TimeSpan.FromSeconds(1), time: Clock());
        var busyHeld = new TaskCompletionSource<int>();
        var quietHeld = new TaskCompletionSource<int>();
        // Busy holds its share alone (4 - 2 reserved); quiet takes the reserve; the total is full.
        var busy = new List<Task<int>> { admission.RunAsync("busy", "b0", () => busyHeld.Task), admission.RunAsync("busy", "b1", () => busyHeld.Task) };
        var quiet = new List<Task<int>> { admission.RunAsync("quiet", "q0", () => quietHeld.Task), admission.RunAsync("quiet", "q1", () => quietHeld.Task) };
        Assert.Equal(4, admission.InFlight);

        // A busy waiter first, then a quiet one: when a quiet slot comes free, busy is at its share (2 of 4 with two
        // tenants active), so the slot goes to the quiet waiter behind it.
        var busyWaiter = admission.RunAsync("busy", "b2", () => Task.FromResult(20));
        var quietWaiter = admission.RunAsync("quiet", "q2", () => Task.FromResult(30));
        Assert.Equal(2, admission.Queued);
        quietHeld.SetResult(1);
        Assert.Equal(30, await quietWaiter);
        await Task.WhenAll(quiet);
        // Quiet has nothing in flight any more: busy alone may hold 2 again, so its waiter still waits for one of its own.
        Assert.False(busyWaiter.IsCompleted);
        busyHeld.SetResult(2);
        Assert.Equal(20, await busyWaiter);
        await Task.WhenAll(busy);
        Assert.Equal((0, 0), (admission.InFlight, admission.Queued));
    }

    [Fact]
    public void A_share_never_falls_below_the_reserve_nor_a_tiny_limit_below_one()
    {
        Assert.Equal(240, new AcquireAdmission(256, 16).FairShare(1));
        Assert.Equal(120, new AcquireAdmission(256, 16).FairShare(2));
        Assert.Equal(16, new AcquireAdmission(256, 16).FairShare(100));
        Assert.Equal(1, new AcquireAdmission(1, 16).FairShare(1));
    }

    [Fact]
    public async Task A_limit_of_zero_admits_everything()
    {
        var admission = new AcquireAdmission(maxInFlight: 0);
        var held = new TaskCompletionSource<int>();
        var calls = Enumerable.Range(0, 100).Select(i => admission.RunAsync("t", $"k{i}", () => held.Task)).ToList();
        Assert.Equal(100, admission.InFlight);
        held.SetResult(7);
        Assert.All(await Task.WhenAll(calls), r => Assert.Equal(7, r));
    }

    [Fact]
    public async Task Through_HTTP_a_burst_over_the_limit_gets_201s_and_fast_503s_in_the_error_shape_and_nothing_else()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        await using var gateway = await BrokerGateway.StartAsync(broker, new Dictionary<string, string>
        {
            ["Gateway:MaxAcquiresInFlight"] = "1",
            ["Gateway:MaxAcquiresQueued"] = "2",
            ["Gateway:AcquireQueueTimeout"] = "00:00:10", // so the two that wait are admitted however slow the machine
        });
        var client = gateway.Admin();

        // Cold acquires (the default pool keeps none ready here) take tens of milliseconds each: forty at once overlap.
        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            client.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey("burst"))}", new { })));
        var created = responses.Count(r => r.StatusCode == HttpStatusCode.Created);
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.True(created >= 3, $"the one admitted and the two that waited get their lease ({created} did)");
        Assert.NotEmpty(refused);
        Assert.Equal(40, created + refused.Count);
        foreach (var response in refused)
        {
            var error = await response.AssertErrorAsync(HttpStatusCode.ServiceUnavailable, "OVERLOADED");
            Assert.Equal(1, error.GetProperty("retry_after").GetInt32());
            Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        }

        // The slots come back: one at a time, every acquire is admitted.
        for (var i = 0; i < 3; i++)
        {
            using var next = await client.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(ApiFixture.NewKey("after"))}", new { });
            Assert.Equal(HttpStatusCode.Created, next.StatusCode);
        }
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    private static Microsoft.Extensions.Time.Testing.FakeTimeProvider Clock() => new(DateTimeOffset.Parse("2026-12-01T12:00:00Z"));

    /// <summary>One slot, and room for <paramref name="maxQueued"/> to wait for it up to <paramref name="timeout"/> on a fake clock.</summary>
    private static AcquireAdmission Queueing(int maxQueued, TimeSpan timeout, out Microsoft.Extensions.Time.Testing.FakeTimeProvider clock)
    {
        clock = Clock();
        return new AcquireAdmission(maxInFlight: 1, maxQueued: maxQueued, queueTimeout: timeout, time: clock);
    }
}
