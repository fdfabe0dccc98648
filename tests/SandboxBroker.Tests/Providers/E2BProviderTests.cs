using SandboxBroker.Grains.Providers;

namespace SandboxBroker.Tests.Providers;

/// <summary>The e2b provider against a local test double of E2B's REST API.</summary>
public sealed class E2BProviderTests
{
    private const string Section = "Providers:E2B";

    private static Dictionary<string, string> Labels(string sandboxId) => new()
    {
        [BrokerLabels.Deployment] = "dep-1",
        [BrokerLabels.SandboxId] = sandboxId,
        [BrokerLabels.ClaimKey] = "github:octo/repo#42", // characters that need encoding in the metadata query
    };

    [Fact]
    public async Task Create_carries_metadata_and_timeout_is_idempotent_list_pages_by_metadata_and_delete_removes()
    {
        await using var e2b = await E2BTestDouble.StartNewAsync();
        var settings = ProviderServices.Http(Section, e2b.Url);
        settings[$"{Section}:TimeoutSeconds"] = "900";
        await using var services = ProviderServices.Build(settings);
        var provider = services.Provider("e2b");

        var a = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "a", "python-3", Labels("sbx-a")), CancellationToken.None);
        await provider.CreateAsync(new ProviderCreateRequest("sbx-b", "b", null, Labels("sbx-b")), CancellationToken.None);
        await provider.CreateAsync(new ProviderCreateRequest("sbx-c", "c", null, Labels("sbx-c")), CancellationToken.None);
        var again = await provider.CreateAsync(new ProviderCreateRequest("sbx-a", "a", "python-3", Labels("sbx-a")), CancellationToken.None);
        e2b.Put(new Dictionary<string, string> { ["team"] = "other" });

        Assert.Equal(a.ExternalId, again.ExternalId);
        Assert.Equal(3, e2b.RequestCount("POST /sandboxes"));
        var created = e2b.Sandboxes.Single(s => s.SandboxID == a.ExternalId);
        Assert.Equal(("python-3", 900, "github:octo/repo#42"), (created.TemplateID, created.Timeout, created.Metadata[BrokerLabels.ClaimKey]));
        Assert.Equal(a.ExternalId, a.Connection["sandbox_id"]);

        var listed = await provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.Deployment] = "dep-1", [BrokerLabels.ClaimKey] = "github:octo/repo#42" });
        Assert.Equal(["sbx-a", "sbx-b", "sbx-c"], listed.Select(s => s.SandboxId).Order());
        Assert.Contains(e2b.Requests, r => r.StartsWith("GET /v2/sandboxes?", StringComparison.Ordinal) && r.Contains("nextToken=", StringComparison.Ordinal));

        await provider.StopAsync("sbx-c", null, CancellationToken.None);
        Assert.Equal(ProviderSandboxState.Stopped, (await provider.GetAsync("sbx-c", null, CancellationToken.None))!.State);
        await provider.StartAsync("sbx-c", null, CancellationToken.None);
        Assert.Equal(ProviderSandboxState.Running, (await provider.GetAsync("sbx-c", null, CancellationToken.None))!.State);

        await provider.DeleteAsync("sbx-a", a.ExternalId, CancellationToken.None);
        await provider.DeleteAsync("sbx-a", a.ExternalId, CancellationToken.None); // already gone: still succeeds
        await provider.DeleteAsync("sbx-b", null, CancellationToken.None); // found by its metadata
        Assert.Null(await provider.GetAsync("sbx-a", a.ExternalId, CancellationToken.None));
        Assert.Equal(2, e2b.Sandboxes.Count); // sbx-c and the foreign one
    }

    [Fact]
    public async Task Safe_calls_are_retried_on_5xx_and_429_and_the_breaker_opens_after_repeated_failures()
    {
        await using var e2b = await E2BTestDouble.StartNewAsync();
        await using var services = ProviderServices.Build(ProviderServices.Http(Section, e2b.Url, breakerMinimumThroughput: 8));
        var provider = services.Provider("e2b");
        var x = await provider.CreateAsync(new ProviderCreateRequest("sbx-x", "x", null, Labels("sbx-x")), CancellationToken.None);

        e2b.FailNext(1, 502);
        e2b.FailNext(1, 429);
        Assert.NotNull(await provider.GetAsync("sbx-x", x.ExternalId, CancellationToken.None));
        Assert.Equal(3, e2b.RequestCount($"GET /sandboxes/{x.ExternalId}"));

        e2b.FailNext(1, 503, "DELETE");
        await provider.DeleteAsync("sbx-x", x.ExternalId, CancellationToken.None);
        Assert.Equal(2, e2b.RequestCount($"DELETE /sandboxes/{x.ExternalId}"));
        Assert.Empty(e2b.Sandboxes);

        // Now E2B fails every call: after enough failures the breaker opens and calls stop reaching it.
        e2b.FailNext(1000, 503);
        var first = await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-y", "y", CancellationToken.None));
        Assert.True(first.Transient);
        var open = await Assert.ThrowsAsync<ProviderException>(() => provider.GetAsync("sbx-y", "y", CancellationToken.None));
        Assert.True(open.Transient);
        Assert.Contains("circuit breaker is open", open.Message, StringComparison.Ordinal);
        var calls = e2b.Requests.Count;
        await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest("sbx-z", "z", null, Labels("sbx-z")), CancellationToken.None));
        Assert.Equal(calls, e2b.Requests.Count);
    }
}
