using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>A delivery recorded by a gateway that stops before processing it is processed, once, by the next gateway.</summary>
public sealed class WebhookRestartTests
{
    [Fact]
    public async Task A_delivery_recorded_before_a_restart_is_processed_once_after_it()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var id = GitHubSender.NewDeliveryId();

        await using (var recording = await BrokerGateway.StartAsync(broker, WebhookFixture.Settings(process: false)))
        {
            var github = new GitHubSender(recording, WebhookFixture.Secret);
            var receipt = await github.DeliverAsync("issues", id, GitHubSender.IssuePayload("opened", WebhookFixture.Repository, number, DateTimeOffset.UtcNow));
            Assert.Equal("received", receipt.Str("status"));
            var row = (await github.GetDeliveryAsync(id))!.Value;
            Assert.Equal("received", row.Str("status"));
            Assert.Equal(0, row.GetProperty("attempts").GetInt32());
        }
        Assert.Empty(WebhookFixture.ProviderSandboxesNamed(broker, $"claude-issue-{number}"));

        await using var restarted = await BrokerGateway.StartAsync(broker, WebhookFixture.Settings());
        var after = new GitHubSender(restarted, WebhookFixture.Secret);
        var processed = await after.WaitForAsync(id, "processed");
        Assert.Equal(1, processed.GetProperty("attempts").GetInt32());
        Assert.Single(WebhookFixture.ProviderSandboxesNamed(broker, $"claude-issue-{number}"));
        Assert.Equal(1L, await broker.Database.ScalarAsync<long>(
            "SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.acquired'", ClaimId.Of(WebhookFixture.Tenant, key)));
        Assert.Equal(1, (await broker.Grains.GetGrain<IGitHubIssueGrain>(key).GetState()).RememberedDeliveries);
    }
}
