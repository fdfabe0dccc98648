using System.Text.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>One cluster (a silo on Postgres) and one gateway taking GitHub webhooks for <see cref="Repository"/>; tests use their own issue numbers.</summary>
public sealed class WebhookFixture : IAsyncLifetime
{
    public const string Repository = "octo/hooks";
    /// <summary>The webhook's tenant (Webhooks:GitHub:Tenant's default): its claims and names are in this namespace.</summary>
    public const string Tenant = "github";
    public const string Secret = "fixture-secret";
    public const string OldSecret = "fixture-secret-before-rotation";

    public BrokerCluster Broker { get; private set; } = null!;
    public BrokerGateway Gateway { get; private set; } = null!;
    public GitHubSender GitHub { get; private set; } = null!;

    /// <summary>The webhook settings the tests run with: quick retries, a short poll.</summary>
    public static Dictionary<string, string> Settings(bool process = true) => new()
    {
        ["Webhooks:GitHub:Secrets:0"] = Secret,
        ["Webhooks:GitHub:Secrets:1"] = OldSecret,
        ["Webhooks:GitHub:Repositories:0"] = Repository,
        ["Webhooks:GitHub:PollInterval"] = "00:00:01",
        ["Webhooks:GitHub:RetryDelay"] = "00:00:00.200",
        ["Webhooks:GitHub:MaxAttempts"] = "2",
        ["Webhooks:GitHub:ProcessDeliveries"] = process ? "true" : "false",
    };

    public async Task InitializeAsync()
    {
        Broker = await BrokerCluster.StartAsync(silos: 1);
        Gateway = await BrokerGateway.StartAsync(Broker, Settings());
        GitHub = new GitHubSender(Gateway, Secret);
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Broker.DisposeAsync();
    }

    public static long NewIssueNumber() => Random.Shared.NextInt64(100_000, 1_000_000_000);

    public static string KeyOf(long number) => $"github:{Repository}#{number}";

    /// <summary>The provider's sandboxes (directories with metadata) with this name, by broker sandbox id.</summary>
    public static IReadOnlyList<string> ProviderSandboxesNamed(BrokerCluster broker, string name)
    {
        var found = new List<string>();
        foreach (var id in broker.ProviderSandboxes())
        {
            try
            {
                using var metadata = JsonDocument.Parse(File.ReadAllText(Path.Combine(broker.SandboxRoot, id, "sandbox.json")));
                if (metadata.RootElement.GetProperty("name").GetString() == name)
                {
                    found.Add(id);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // being deleted right now
            }
        }
        return found;
    }
}

[CollectionDefinition(Name)]
public sealed class WebhookCollection : ICollectionFixture<WebhookFixture>
{
    public const string Name = "webhooks";
}
