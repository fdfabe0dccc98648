namespace SandboxBroker.Grains;

/// <summary>The rules of a lease, as pure functions of the request, the pool and the clock.</summary>
public static class LeaseRules
{
    public const int MaxLabels = 32;
    public const int MaxLabelLength = 256;

    public static void ValidateRequest(AcquireRequest request)
    {
        Require(!string.IsNullOrWhiteSpace(request.Tenant), "tenant", "tenant is required");
        Require(!string.IsNullOrWhiteSpace(request.Owner), "owner", "owner is required");
        Require(request.Owner.Length <= 200, "owner", "owner must be at most 200 characters");
        Require(request.Ttl is null || request.Ttl > TimeSpan.Zero, "ttl_seconds", "ttl must be positive");
        Require(request.IdleTimeout is null || request.IdleTimeout > TimeSpan.Zero, "idle_timeout_seconds", "idle timeout must be positive");
        if (request.Labels is { } labels)
        {
            Require(labels.Count <= MaxLabels, "labels", $"at most {MaxLabels} labels");
            foreach (var (key, value) in labels)
            {
                Require(key.Length is > 0 and <= 63 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/'),
                    "labels", $"label key '{key}' must be 1-63 characters of letters, digits, '-', '_', '.', '/'");
                Require(value.Length <= MaxLabelLength, "labels", $"label '{key}' value must be at most {MaxLabelLength} characters");
                Require(!key.StartsWith("sandboxbroker.", StringComparison.Ordinal), "labels", "labels starting with 'sandboxbroker.' are reserved");
            }
        }
        Require(request.Name is null || request.Name.Length is > 0 and <= 100, "name", "name must be 1-100 characters");
    }

    /// <summary>
    /// The owner a claim's lease counts against, null when none: an owner that is the claim key itself (the default when a
    /// request names none) can hold one lease at most, this one, so there is nothing to count.
    /// </summary>
    public static string? CountedOwner(string? owner, string claimKey) => owner is null || owner == claimKey ? null : owner;

    /// <summary>The TTL the lease gets: the request's, else the pool's default; longer than the pool's max is refused.</summary>
    public static TimeSpan EffectiveTtl(TimeSpan? requested, PoolConfig pool)
    {
        var ttl = requested ?? pool.DefaultTtl;
        if (ttl > pool.MaxTtl)
        {
            throw new BrokerException(ErrorCodes.TtlTooLong,
                $"ttl of {ttl.TotalSeconds:0} s exceeds pool '{pool.Name}' max of {pool.MaxTtl.TotalSeconds:0} s") { Field = "ttl_seconds" };
        }
        return ttl;
    }

    public static bool IsDue(Lease lease, DateTimeOffset now) => now >= lease.DeadlineAt;

    public static Lease End(Lease lease, LeaseStatus status, string reason, DateTimeOffset now) =>
        lease with { Status = status, EndedAt = now, EndReason = reason };

    /// <summary>Newest first, at most <paramref name="limit"/> entries, none ended before now - retention.</summary>
    public static List<Lease> Prune(IEnumerable<Lease> history, int limit, TimeSpan retention, DateTimeOffset now) =>
        history.Where(l => l.EndedAt is null || l.EndedAt > now - retention)
            .OrderByDescending(l => l.Number)
            .Take(limit)
            .ToList();

    private static void Require(bool condition, string field, string message)
    {
        if (!condition)
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, message) { Field = field };
        }
    }
}
