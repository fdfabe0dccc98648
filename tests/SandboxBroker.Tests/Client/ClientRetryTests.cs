using System.Net;
using SandboxBroker.Client;

namespace SandboxBroker.Tests.Client;

/// <summary>
/// Which calls the client retries and how long it waits, against <see cref="BrokerAnswerDouble"/> (503 and 429 on demand).
/// The waits are checked as the delays the client chose, never by the clock.
/// </summary>
public sealed class ClientRetryTests : IAsyncLifetime
{
    private const string LeaseJson = """
        {"claim_key":"k:1","lease_number":1,"status":"active","tenant":"t","owner":"k:1","pool":"default","sandbox_id":"sbx-1",
         "sandbox_name":null,"acquired_at":"2026-12-01T10:00:00Z","expires_at":"2026-12-01T11:00:00Z","deadline_at":"2026-12-01T11:00:00Z",
         "idle_timeout_seconds":null,"last_activity_at":"2026-12-01T10:00:00Z","ended_at":null,"end_reason":null,"labels":{},"sandbox":null}
        """;

    private BrokerAnswerDouble _broker = null!;
    private readonly List<BrokerRetry> _retries = [];

    public async Task InitializeAsync() => _broker = await BrokerAnswerDouble.StartAsync();

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private SandboxBrokerClient Client() => new(new SandboxBrokerClientOptions
    {
        BaseAddress = new Uri(_broker.Url),
        Token = "sbk_test",
        RetryBaseDelay = TimeSpan.FromMilliseconds(10), // far from the Retry-After below, so the chosen delay shows which was used
        OnRetry = r =>
        {
            lock (_retries)
            {
                _retries.Add(r);
            }
        },
    });

    [Fact]
    public async Task An_overloaded_acquire_is_retried_after_the_Retry_After_the_broker_sent()
    {
        _broker.Then(503, BrokerAnswerDouble.Error("OVERLOADED", "too many acquires in flight", "req-1", retryAfter: 2), retryAfter: 2);
        _broker.Then(201, LeaseJson);
        using var client = Client();

        var result = await client.Claims.AcquireAsync("k:1");

        Assert.Equal("sbx-1", result.Lease.SandboxId);
        Assert.True(result.Created);
        Assert.Equal(new[] { "PUT /v1/claims/k:1", "PUT /v1/claims/k:1" }, _broker.Requests);
        var retry = Assert.Single(_retries);
        Assert.Equal(503, retry.Status);
        Assert.Equal(TimeSpan.FromSeconds(2), retry.Delay);
        Assert.Equal("acquire", retry.Operation);
    }

    [Fact]
    public async Task Minting_a_token_is_not_retried_on_503_and_the_error_keeps_its_code_and_Retry_After()
    {
        _broker.Then(503, BrokerAnswerDouble.Error("UNAVAILABLE", "the cluster is not reachable right now", "req-2", retryAfter: 1), retryAfter: 1);
        using var client = Client();

        var error = await Assert.ThrowsAsync<BrokerApiException>(() => client.Tokens.CreateAsync(new TokenRequest("acme")));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.Status);
        Assert.Equal(BrokerErrorCodes.Unavailable, error.Code);
        Assert.Equal("req-2", error.RequestId);
        Assert.Equal(TimeSpan.FromSeconds(1), error.RetryAfter);
        Assert.True(error.IsTransient);
        Assert.Single(_broker.Requests);
        Assert.Empty(_retries);
    }

    [Fact]
    public async Task A_rate_limited_call_is_retried_even_when_not_idempotent_since_the_broker_did_nothing()
    {
        _broker.Then(429, BrokerAnswerDouble.Error("RATE_LIMITED", "over the rate", "req-3", retryAfter: 1), retryAfter: 1);
        _broker.Then(201, """{"token":"sbk_x","details":{"token_id":"tok_1","tenant":"acme","scopes":["claims"],"name":null,"created_at":"2026-12-01T10:00:00Z","expires_at":null,"revoked_at":null,"last_used_at":null}}""");
        using var client = Client();

        var minted = await client.Tokens.CreateAsync(new TokenRequest("acme"));

        Assert.Equal("sbk_x", minted.Token);
        Assert.Equal(2, _broker.Requests.Count);
        Assert.Equal(TimeSpan.FromSeconds(1), Assert.Single(_retries).Delay);
    }

    [Fact]
    public async Task An_answer_without_the_error_shape_gets_the_code_of_its_status()
    {
        _broker.Then(404, "not json at all");
        using var client = Client();

        var error = await Assert.ThrowsAsync<BrokerApiException>(() => client.Pools.GetAsync("nope"));

        Assert.Equal(BrokerErrorCodes.NotFound, error.Code);
        Assert.Contains("not json at all", error.Message);
    }
}
