using Microsoft.Extensions.Time.Testing;
using SandboxBroker.Grains;

namespace SandboxBroker.Tests;

/// <summary>The pure rules: keys, names, the sandbox state machine, lease deadlines and history pruning.</summary>
public sealed class RulesTests
{
    [Theory]
    [InlineData("github:octo/repo#42", true)]
    [InlineData("track:lab-7/student-3", true)]
    [InlineData("ctx:tenant/conv/path", true)]
    [InlineData("", false)]
    [InlineData("has space", false)]
    [InlineData("tab\there", false)]
    [InlineData("émoji", false)]
    public void Claim_keys_are_validated(string key, bool valid) => Assert.Equal(valid, ClaimKey.IsValid(key, out _));

    [Fact]
    public void A_claim_key_longer_than_200_characters_is_refused() =>
        Assert.False(ClaimKey.IsValid(new string('a', 201), out var reason) || reason is null);

    [Theory]
    [InlineData("claude-issue-{number}", "github:octo/repo#42", "claude-issue-42")]
    [InlineData("{repo}-{number}", "github:Octo/My_Repo#7", "my-repo-7")]
    [InlineData("{key}", "track:lab/1", "track-lab-1")]
    public void Name_templates_render_to_dns_labels(string template, string key, string expected) =>
        Assert.Equal(expected, ClaimNames.Render(template, key));

    [Fact]
    public void Invalid_sandbox_transitions_are_errors_never_overwrites()
    {
        Assert.True(SandboxLifecycle.CanMove(SandboxStatus.Ready, SandboxStatus.Leased));
        var e = Assert.Throws<BrokerException>(() => SandboxLifecycle.Ensure("s1", SandboxStatus.Deleted, SandboxStatus.Ready));
        Assert.Equal(ErrorCodes.InvalidTransition, e.Code);
        Assert.False(SandboxLifecycle.CanMove(SandboxStatus.Leased, SandboxStatus.Ready));
    }

    [Fact]
    public void A_lease_ends_at_the_earlier_of_its_ttl_and_its_idle_deadline()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-23T10:00:00Z"));
        var now = time.GetUtcNow();
        var lease = new Lease("k", 1, "s", "default", "t", "o", null, now, now.AddHours(1), TimeSpan.FromMinutes(10), now,
            LeaseStatus.Active, null, null, new Dictionary<string, string>());
        Assert.Equal(now.AddMinutes(10), lease.DeadlineAt);
        time.Advance(TimeSpan.FromMinutes(9));
        Assert.False(LeaseRules.IsDue(lease, time.GetUtcNow()));
        var touched = lease with { LastActivityAt = time.GetUtcNow() };
        time.Advance(TimeSpan.FromMinutes(9));
        Assert.False(LeaseRules.IsDue(touched, time.GetUtcNow()));
        Assert.True(LeaseRules.IsDue(lease, time.GetUtcNow()));
    }

    [Fact]
    public void History_is_bounded_by_count_and_retention()
    {
        var now = DateTimeOffset.Parse("2026-11-23T10:00:00Z");
        var history = Enumerable.Range(1, 10).Select(i => new Lease("k", i, $"s{i}", "default", "t", "o", null, now, now, null, now,
            LeaseStatus.Expired, now.AddDays(i - 11), "ttl", new Dictionary<string, string>())).ToList();
        var pruned = LeaseRules.Prune(history, limit: 5, retention: TimeSpan.FromDays(7), now);
        Assert.Equal([10L, 9, 8, 7, 6], pruned.Select(l => l.Number));
        Assert.Equal([10L, 9], LeaseRules.Prune(history, 50, TimeSpan.FromDays(2.5), now).Select(l => l.Number));
    }
}
