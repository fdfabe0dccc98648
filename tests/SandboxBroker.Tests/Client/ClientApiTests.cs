using System.Net;
using Microsoft.Extensions.DependencyInjection;
using SandboxBroker.Client;
using SandboxBroker.Tests.Api;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Client;

/// <summary>SandboxBroker.Client against the real gateway and cluster: the calls, and the error shape as exceptions.</summary>
[Collection(ApiCollection.Name)]
public sealed class ClientApiTests(ApiFixture fixture) : IDisposable
{
    private readonly SandboxBrokerClient _admin = new(new Uri(fixture.Gateway.Url), BrokerGateway.AdminToken);

    [Fact]
    public async Task Acquire_is_created_once_then_repeats_the_same_lease_and_release_ends_it()
    {
        var key = ApiFixture.NewKey("github:octo/client#");
        var first = await _admin.Claims.AcquireAsync(key, new AcquireOptions(TtlSeconds: 600, Labels: new Dictionary<string, string> { ["issue"] = "7" }));
        Assert.True(first.Created);
        Assert.Contains(first.Outcome, new[] { "warm", "cold" });
        Assert.Equal(key, first.Lease.ClaimKey);
        Assert.Equal("7", first.Lease.Labels!["issue"]);
        Assert.Equal(TimeSpan.FromSeconds(600), first.Lease.ExpiresAt - first.Lease.AcquiredAt);
        Assert.Equal("leased", first.Lease.Sandbox!.Status);

        var again = await _admin.Claims.AcquireAsync(key, new AcquireOptions(TtlSeconds: 600));
        Assert.False(again.Created);
        Assert.Equal("repeat", again.Outcome);
        Assert.Equal(first.Lease.SandboxId, again.Lease.SandboxId);

        var sandbox = await _admin.Sandboxes.GetAsync(first.Lease.SandboxId);
        Assert.Equal(key, sandbox.ClaimKey);
        var leased = await _admin.Sandboxes.ListAllAsync(new SandboxQuery(Status: "leased", Limit: 1)).ToListAsync();
        Assert.Contains(leased, s => s.SandboxId == sandbox.SandboxId); // followed the cursor page by page

        var released = await _admin.Claims.ReleaseAsync(key, "done");
        Assert.Equal("released", released.Status);
        Assert.Equal("done", released.EndReason);
        Assert.Equal("released", (await _admin.Claims.HistoryAsync(key)).Leases[0].Status);
    }

    [Fact]
    public async Task Error_answers_are_BrokerApiExceptions_with_code_status_field_and_request_id()
    {
        var missing = await Assert.ThrowsAsync<BrokerApiException>(() => _admin.Claims.GetAsync(ApiFixture.NewKey()));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Equal(BrokerErrorCodes.NotFound, missing.Code);
        Assert.False(string.IsNullOrEmpty(missing.RequestId));

        var badTtl = await Assert.ThrowsAsync<BrokerApiException>(() => _admin.Claims.AcquireAsync(ApiFixture.NewKey(), new AcquireOptions(TtlSeconds: -1)));
        Assert.Equal(BrokerErrorCodes.InvalidArgument, badTtl.Code);
        Assert.Equal("ttl_seconds", badTtl.Field);

        var notActive = await Assert.ThrowsAsync<BrokerApiException>(() => _admin.Claims.TouchAsync(ApiFixture.NewKey()));
        Assert.Equal(HttpStatusCode.Conflict, notActive.Status);

        using var stranger = new SandboxBrokerClient(new Uri(fixture.Gateway.Url), "sbk_not-a-token");
        var unauthenticated = await Assert.ThrowsAsync<BrokerApiException>(() => stranger.Pools.ListAsync());
        Assert.Equal(BrokerErrorCodes.Unauthenticated, unauthenticated.Code);
        Assert.False(unauthenticated.IsTransient);

        // Another tenant's key answers as an unused one would: it is not in the caller's namespace.
        var key = ApiFixture.NewKey();
        using var owner = new SandboxBrokerClient(new Uri(fixture.Gateway.Url), await fixture.Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims"));
        using var other = new SandboxBrokerClient(new Uri(fixture.Gateway.Url), await fixture.Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims"));
        await owner.Claims.AcquireAsync(key);
        var unseen = await Assert.ThrowsAsync<BrokerApiException>(() => other.Claims.GetAsync(key));
        Assert.Equal((HttpStatusCode.NotFound, BrokerErrorCodes.NotFound), (unseen.Status, unseen.Code));
        await owner.Claims.ReleaseAsync(key);
    }

    [Fact]
    public async Task The_DI_registration_reaches_the_gateway_with_the_configured_token()
    {
        var services = new ServiceCollection();
        services.AddSandboxBrokerClient(o =>
        {
            o.BaseAddress = new Uri(fixture.Gateway.Url);
            o.Token = BrokerGateway.AdminToken;
        });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<SandboxBrokerClient>();

        var pools = await client.Pools.ListAsync();
        Assert.Contains(pools, p => p.Name == "default");
        var stats = await client.Admin.StatsAsync();
        Assert.Contains(stats.Pools, p => p.Name == "default");
        var minted = await client.Tokens.CreateAsync(new TokenRequest(ApiFixture.NewTenant(), Name: "from the client"));
        Assert.StartsWith("sbk_", minted.Token);
        Assert.NotNull((await client.Tokens.RevokeAsync(minted.Details.TokenId)).RevokedAt);
    }

    [Fact]
    public async Task The_lab_contract_allocates_once_per_track_and_marks_for_deletion()
    {
        var track = "track-" + Guid.NewGuid().ToString("N")[..12];
        var first = await _admin.Lab.AllocateAsync(track);
        var again = await _admin.Lab.AllocateAsync(track);
        Assert.Equal(first.SandboxId, again.SandboxId);
        Assert.Equal("allocated", (await _admin.Lab.GetSandboxAsync(track, first.SandboxId)).Status);
        Assert.Equal("pending_deletion", (await _admin.Lab.MarkForDeletionAsync(track, first.SandboxId)).Status);
    }

    public void Dispose() => _admin.Dispose();
}
