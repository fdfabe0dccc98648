using System.Net;
using System.Net.Http.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>The webhook's keys and names are its tenant's: no other tenant can take or block an issue's sandbox.</summary>
[Collection(WebhookCollection.Name)]
public sealed class WebhookTenancyTests(WebhookFixture fixture)
{
    [Fact]
    public async Task A_tenant_that_takes_an_issues_key_and_name_first_does_not_stop_the_webhook_from_giving_the_issue_its_sandbox()
    {
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var name = $"claude-issue-{number}";
        var mallory = fixture.Gateway.Client(await fixture.Gateway.MintTokenAsync("t-" + Guid.NewGuid().ToString("N")[..12]));
        string squatted;
        using (var taken = await mallory.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(key)}", new { name }))
        {
            Assert.Equal(HttpStatusCode.Created, taken.StatusCode);
            squatted = (await taken.JsonAsync()).Str("sandbox_id");
        }

        var id = GitHubSender.NewDeliveryId();
        await fixture.GitHub.DeliverAsync("issues", id, GitHubSender.IssuePayload("opened", WebhookFixture.Repository, number, DateTimeOffset.UtcNow));
        var processed = await fixture.GitHub.WaitForAsync(id, "processed");
        Assert.DoesNotContain("another tenant", processed.ToString());

        using var issue = await fixture.Gateway.Admin().GetAsync($"/v1/claims/{ApiAssert.Key(key)}?tenant={WebhookFixture.Tenant}");
        Assert.Equal(HttpStatusCode.OK, issue.StatusCode);
        var lease = await issue.JsonAsync();
        Assert.Equal(name, lease.Str("sandbox_name"));
        Assert.NotEqual(squatted, lease.Str("sandbox_id"));
        // Each tenant has its own sandbox of that name; Mallory's is still hers.
        Assert.Equal(2, WebhookFixture.ProviderSandboxesNamed(fixture.Broker, name).Count);
        Assert.Equal(squatted, (await (await mallory.GetAsync($"/v1/claims/{ApiAssert.Key(key)}")).JsonAsync()).Str("sandbox_id"));

        // Closing the issue releases the webhook's claim only.
        var closed = GitHubSender.NewDeliveryId();
        await fixture.GitHub.DeliverAsync("issues", closed, GitHubSender.IssuePayload("closed", WebhookFixture.Repository, number, DateTimeOffset.UtcNow.AddSeconds(1), state: "closed"));
        await fixture.GitHub.WaitForAsync(closed, "processed");
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Gateway.Admin().GetAsync($"/v1/claims/{ApiAssert.Key(key)}?tenant={WebhookFixture.Tenant}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await mallory.GetAsync($"/v1/claims/{ApiAssert.Key(key)}")).StatusCode);
    }
}
