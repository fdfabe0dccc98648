namespace SandboxBroker;

/// <summary>
/// A claim grain's id: <c>{tenant}/{claim key}</c>. A claim key belongs to its tenant by construction: two tenants'
/// acquires of the same key reach two grains, so one tenant can neither take nor block nor see another's key, and
/// another tenant's key is indistinguishable from an unused one. The tenant never holds a '/', so the first one splits.
/// </summary>
public static class ClaimId
{
    public const char Separator = '/';

    public static string Of(string tenant, string claimKey) => $"{tenant}{Separator}{claimKey}";

    public static (string Tenant, string ClaimKey) Parse(string claimId)
    {
        var at = claimId.IndexOf(Separator);
        if (at <= 0 || !TenantName.IsValid(claimId[..at]))
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, $"'{claimId}' is not a claim id ({{tenant}}/{{claim key}})") { Field = "key" };
        }
        var key = claimId[(at + 1)..];
        ClaimKey.Validate(key);
        return (claimId[..at], key);
    }
}

/// <summary>How callers reach a tenant's claim.</summary>
public static class ClaimGrains
{
    public static IClaimGrain GetClaim(this IGrainFactory grains, string tenant, string claimKey) =>
        grains.GetGrain<IClaimGrain>(ClaimId.Of(tenant, claimKey));
}
