using SandboxBroker.Client;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace SandboxBroker.Cli.Commands;

// The contract's SandboxBroker.Lease (via src/Storage) would win over the client's by namespace nesting.
using Lease = SandboxBroker.Client.Lease;

/// <summary>How leases and sandboxes look in a terminal (shared by the claims, sandboxes and watch commands).</summary>
public static class LeaseViews
{
    public static IRenderable Lease(Lease l, Output output, string? outcome = null) => Output.Fields(
    [
        ("claim key", l.ClaimKey),
        ("status", l.Status),
        ("outcome", outcome),
        ("sandbox", l.SandboxId),
        ("name", l.SandboxName),
        ("pool", l.Pool),
        ("tenant", l.Tenant),
        ("owner", l.Owner),
        ("lease", $"#{l.LeaseNumber}"),
        ("acquired", output.When(l.AcquiredAt)),
        ("expires", output.When(l.ExpiresAt)),
        ("deadline", output.When(l.DeadlineAt)),
        ("idle timeout", l.IdleTimeoutSeconds is { } idle ? Durations.Format(TimeSpan.FromSeconds(idle)) : null),
        ("last activity", output.When(l.LastActivityAt)),
        ("ended", l.EndedAt is null ? null : output.When(l.EndedAt)),
        ("end reason", l.EndReason),
        ("labels", l.Labels is { Count: > 0 } ? Output.Labels(l.Labels) : null),
        ("sandbox status", l.Sandbox?.Status),
        ("connection", l.Sandbox?.Connection is { Count: > 0 } c ? Output.Labels(c) : null),
    ]);

    public static IRenderable Sandbox(Sandbox s, Output output) => Output.Fields(
    [
        ("sandbox", s.SandboxId),
        ("status", s.Status),
        ("name", s.Name),
        ("pool", s.Pool),
        ("provider", s.Provider),
        ("external id", s.ExternalId),
        ("claim key", s.ClaimKey),
        ("tenant", s.Tenant),
        ("owner", s.Owner),
        ("created", output.When(s.CreatedAt)),
        ("updated", output.When(s.UpdatedAt)),
        ("lease expires", s.LeaseExpiresAt is null ? null : output.When(s.LeaseExpiresAt)),
        ("labels", s.Labels is { Count: > 0 } ? Output.Labels(s.Labels) : null),
        ("connection", s.Connection is { Count: > 0 } c ? Output.Labels(c) : null),
        ("last error", s.LastError),
    ]);

    /// <summary>Sandboxes as rows; with <paramref name="claimsOnly"/> the claim's view of them (key first).</summary>
    public static Table Sandboxes(IEnumerable<Sandbox> sandboxes, Output output, bool claimsOnly = false)
    {
        var table = claimsOnly
            ? Output.Table("claim key", "sandbox", "pool", "owner", "expires")
            : Output.Table("sandbox", "status", "pool", "claim key", "owner", "created");
        foreach (var s in sandboxes)
        {
            if (claimsOnly)
            {
                Output.Row(table, s.ClaimKey, s.SandboxId, s.Pool, s.Owner, output.When(s.LeaseExpiresAt));
            }
            else
            {
                Output.Row(table, s.SandboxId, s.Status, s.Pool, s.ClaimKey, s.Owner, output.When(s.CreatedAt));
            }
        }
        return table;
    }
}
