using System.Diagnostics.CodeAnalysis;

namespace SandboxBroker;

/// <summary>
/// What a tenant may be called: the one rule tokens, quotas and claim grain ids check.
/// </summary>
public static class TenantName
{
    public const int MaxLength = 63;

    public const string Rule = "tenant is 1-63 characters of a-z, 0-9, '-' and '_'";

    /// <remarks>Never a '/': it separates the tenant from the claim key in a claim grain's id (<see cref="ClaimId"/>).</remarks>
    public static bool IsValid([NotNullWhen(true)] string? tenant) =>
        tenant is { Length: > 0 and <= MaxLength } && tenant.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_');
}
