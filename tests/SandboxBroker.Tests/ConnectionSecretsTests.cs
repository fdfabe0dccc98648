using Microsoft.Extensions.Configuration;
using SandboxBroker.Grains;
using SandboxBroker.Storage;

namespace SandboxBroker.Tests;

/// <summary>Connection details are sealed in grain state; only the silo's key opens them, and only for their own sandbox.</summary>
public sealed class ConnectionSecretsTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    [Fact]
    public void Sealed_details_open_with_the_key_for_their_own_sandbox_only()
    {
        var secrets = new ConnectionSecrets(Key);
        var details = new Dictionary<string, string> { ["password"] = "s3cret-ü", ["host"] = "127.0.0.1" };

        var stored = secrets.Seal("sbx-1", details);
        Assert.All(stored.Values, v => Assert.DoesNotContain("s3cret", v));
        Assert.Equal(details, secrets.Open("sbx-1", stored));

        // Moved to another sandbox's row, or opened with another key: refused, never answered wrong.
        Assert.Equal(ErrorCodes.ProviderError, Assert.Throws<BrokerException>(() => secrets.Open("sbx-2", stored)).Code);
        var otherKey = new ConnectionSecrets(Key.Select(b => (byte)(b ^ 0xFF)).ToArray());
        Assert.Throws<BrokerException>(() => otherKey.Open("sbx-1", stored));
        Assert.Throws<BrokerException>(() => new ConnectionSecrets(null).Open("sbx-1", stored));
    }

    [Fact]
    public void Details_stored_before_sealing_are_answered_as_they_are()
    {
        var plain = new Dictionary<string, string> { ["password"] = "old" };
        Assert.Equal(plain, new ConnectionSecrets(Key).Open("sbx-1", plain));
        Assert.Equal(plain, new ConnectionSecrets(null).Seal("sbx-1", plain));
    }

    [Fact]
    public void A_silo_with_a_provider_that_answers_secrets_needs_a_key_of_32_bytes()
    {
        var e2b = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Providers:E2B:ApiKey"] = "e2b_x" }).Build();
        Assert.Equal(["e2b"], BrokerServices.ProvidersWithSecrets(e2b));
        var missing = Assert.Throws<StartupException>(() => ConnectionSecrets.FromConfiguration(e2b).RequireFor(BrokerServices.ProvidersWithSecrets(e2b)));
        Assert.Contains(ConnectionSecrets.KeySetting, missing.Message);

        var local = new ConfigurationBuilder().Build();
        ConnectionSecrets.FromConfiguration(local).RequireFor(BrokerServices.ProvidersWithSecrets(local)); // a default start needs none

        var shortKey = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [ConnectionSecrets.KeySetting] = Convert.ToBase64String(new byte[16]),
        }).Build();
        Assert.Throws<StartupException>(() => ConnectionSecrets.FromConfiguration(shortKey));
    }
}
