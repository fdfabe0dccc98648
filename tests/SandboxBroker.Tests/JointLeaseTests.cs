using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>
/// A warm lease on one silo: the lease and its sandbox's `leased` state are stored in one transaction (a joint write), so
/// no failure between the two calls can leave one without the other.
/// </summary>
public sealed class JointLeaseTests
{
    [Fact]
    public async Task A_warm_lease_and_its_sandbox_are_stored_in_one_transaction()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(1, joint: true);

        var result = await broker.Grains.GetClaim("t", "github:octo/joint#1").Acquire(new AcquireRequest("default", "t", "o"));

        Assert.Equal(AcquireOutcome.Warm, result.Outcome);
        Assert.Equal(SandboxStatus.Leased, result.Sandbox.Status);
        Assert.Equal(await WrittenBy(broker, "claim", ClaimId.Of("t", "github:octo/joint#1")), await WrittenBy(broker, "sandbox", result.Sandbox.SandboxId));
    }

    [Fact]
    public async Task The_sequential_lease_stores_them_in_two()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(1, joint: false);

        var result = await broker.Grains.GetClaim("t", "github:octo/joint#1").Acquire(new AcquireRequest("default", "t", "o"));

        Assert.Equal((AcquireOutcome.Warm, SandboxStatus.Leased), (result.Outcome, result.Sandbox.Status));
        Assert.NotEqual(await WrittenBy(broker, "claim", ClaimId.Of("t", "github:octo/joint#1")), await WrittenBy(broker, "sandbox", result.Sandbox.SandboxId));
    }

    [Fact]
    public async Task A_warm_lease_whose_sandbox_call_fails_stores_nothing_and_the_sandbox_is_never_handed_out()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(1, joint: true);
        Assert.Equal(1L, await broker.Database.ScalarAsync<long>("SELECT count(*) FROM broker_sandboxes WHERE status = 'ready'"));
        var ready = (await broker.Database.ScalarAsync<string>("SELECT sandbox_id FROM broker_sandboxes WHERE status = 'ready'"))!;
        broker.SiloService<CallFaults>().FailNext("ISandboxGrain.LeaseJointly");
        var claim = broker.Grains.GetClaim("t", "github:octo/failed#1");

        await Assert.ThrowsAnyAsync<Exception>(() => claim.Acquire(new AcquireRequest("default", "t", "o")));

        Assert.Null(await claim.Get());
        Assert.Empty(await claim.History());
        await Eventually.TrueAsync(async () => (await broker.Grains.GetGrain<ISandboxGrain>(ready).Get())?.Status is SandboxStatus.Deleting or SandboxStatus.Deleted,
            "the sandbox whose lease call failed is deleted");
        var again = await claim.Acquire(new AcquireRequest("default", "t", "o"));
        Assert.NotEqual(ready, again.Sandbox.SandboxId);
        Assert.Equal(1, again.Lease.Number);
    }

    [Fact]
    public async Task A_warm_lease_whose_answer_was_lost_stands_and_the_retry_answers_it()
    {
        await using var broker = await LeaseStepFailureTests.WithReadySandboxes(1, joint: true);
        broker.SiloService<CallFaults>().FailNext("ISandboxGrain.LeaseJointly", afterRunning: true);
        var claim = broker.Grains.GetClaim("t", "github:octo/lost#1");

        await Assert.ThrowsAnyAsync<Exception>(() => claim.Acquire(new AcquireRequest("default", "t", "o")));

        var lease = await claim.Get();
        Assert.NotNull(lease);
        var sandbox = await broker.Grains.GetGrain<ISandboxGrain>(lease.SandboxId).Get();
        Assert.Equal((SandboxStatus.Leased, "github:octo/lost#1", 1L), (sandbox!.Status, sandbox.ClaimKey, lease.Number));
        var retry = await claim.Acquire(new AcquireRequest("default", "t", "o"));
        Assert.Equal((AcquireOutcome.Repeat, lease.SandboxId), (retry.Outcome, retry.Sandbox.SandboxId));
    }

    /// <summary>The transaction that last wrote a grain's state row.</summary>
    private static async Task<long> WrittenBy(BrokerCluster broker, string state, string key) =>
        await broker.Database.ScalarAsync<long>("SELECT xmin::text::bigint FROM broker_grain_state WHERE state_name = $1 AND grain_key = $2", state, key);
}
