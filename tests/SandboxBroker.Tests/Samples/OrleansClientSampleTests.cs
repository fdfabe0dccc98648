using System.Text.RegularExpressions;

namespace SandboxBroker.Tests.Samples;

/// <summary>
/// samples/OrleansClient, run as its own process the way the README shows, against a silo process: an internal service
/// acquires a claim key's sandbox for its tenant, gets the same sandbox again, and releases it.
/// </summary>
[Collection(SiloProcessCollection.Name)]
public sealed partial class OrleansClientSampleTests(SiloProcessFixture silo)
{
    [Fact]
    public async Task The_sample_acquires_repeats_with_the_same_sandbox_and_releases_for_its_tenant()
    {
        var key = $"github:octo/sample#{Random.Shared.Next(1, 1_000_000)}";
        var (code, error, output) = await silo.RunSampleAsync("--tenant", "acme", "--key", key);
        Assert.True(code == 0, $"exit {code}: {error}\n{output}\nsilo:\n{silo.SiloLog()}");

        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        var acquired = Line(lines, "acquired", key);
        var repeated = Line(lines, "repeated", key);
        var released = Line(lines, "released", key);
        Assert.Equal("acme", acquired["tenant"]);
        Assert.Contains(acquired["outcome"], new[] { "warm", "cold" });
        Assert.Equal(acquired["sandbox"], repeated["sandbox"]);
        Assert.Equal("repeat", repeated["outcome"]);
        Assert.Equal(acquired["sandbox"], released["sandbox"]);
        Assert.Equal("released", released["status"]);

        // What the broker stored: the released lease is the key's history, under the tenant the sample acted for.
        var stored = await silo.Database.ScalarAsync<string>("SELECT tenant || ' ' || status FROM broker_claims WHERE claim_key = $1", ClaimId.Of("acme", key));
        Assert.Equal("acme released", stored);
    }

    [Fact]
    public async Task Another_tenants_same_key_is_another_claim_and_a_refusal_has_its_exit_code()
    {
        var key = $"track:lab-7/student-{Random.Shared.Next(1, 1_000_000)}";
        var (code, error, output) = await silo.RunSampleAsync("--tenant", "acme", "--key", key, "--keep", "true");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        var acme = Line(output.Split('\n', StringSplitOptions.TrimEntries), "acquired", key);

        // The same key for another tenant: its own claim and its own sandbox; acme's lease is untouched.
        (code, error, output) = await silo.RunSampleAsync("--tenant", "globex", "--key", key);
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        var globex = Line(output.Split('\n', StringSplitOptions.TrimEntries), "acquired", key);
        Assert.NotEqual(acme["sandbox"], globex["sandbox"]);
        Assert.Equal("acme active", await silo.Database.ScalarAsync<string>(
            "SELECT tenant || ' ' || status FROM broker_claims WHERE claim_key = $1", ClaimId.Of("acme", key)));

        // A refusal (a pool that does not exist) exits 1 with the broker's code.
        (code, error, _) = await silo.RunSampleAsync("--tenant", "acme", "--key", key + "-x", "--pool", "no-such-pool");
        Assert.Equal(1, code);
        Assert.StartsWith("orleans-client: NOT_FOUND", error);
    }

    private static Dictionary<string, string> Line(string[] lines, string verb, string key)
    {
        var line = lines.SingleOrDefault(l => l.StartsWith($"{verb} {key} ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no '{verb}' line in:\n{string.Join('\n', lines)}");
        return Field().Matches(line).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
    }

    [GeneratedRegex(@"(\w+)=(\S+)")]
    private static partial Regex Field();
}
