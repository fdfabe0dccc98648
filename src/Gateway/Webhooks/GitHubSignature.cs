using System.Security.Cryptography;
using System.Text;

namespace SandboxBroker.Gateway.Webhooks;

/// <summary>
/// <c>X-Hub-Signature-256: sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c>, checked against every configured secret
/// (several during a rotation). The comparison is constant-time over the digest bytes, and every secret is tried, so
/// the time taken says nothing about which secret or how many bytes matched.
/// </summary>
public static class GitHubSignature
{
    public const string Header = "X-Hub-Signature-256";
    private const string Prefix = "sha256=";
    private const int DigestBytes = 32;

    /// <summary>The header value GitHub sends for this body and secret.</summary>
    public static string Compute(string secret, ReadOnlySpan<byte> body) =>
        Prefix + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>True when <paramref name="header"/> is a well-formed signature of <paramref name="body"/> under one of <paramref name="secrets"/>.</summary>
    public static bool Verify(string? header, ReadOnlySpan<byte> body, IReadOnlyList<string> secrets)
    {
        if (secrets.Count == 0 || !TryParse(header, out var presented))
        {
            return false;
        }
        var match = false;
        Span<byte> expected = stackalloc byte[DigestBytes];
        foreach (var secret in secrets)
        {
            HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body, expected);
            match |= CryptographicOperations.FixedTimeEquals(expected, presented);
        }
        return match;
    }

    /// <summary>The 401 for a missing, malformed or wrong signature.</summary>
    public static Api.ApiErrorException Refused(string? header) =>
        new Api.ApiError(StatusCodes.Status401Unauthorized, Api.GatewayErrorCodes.Unauthenticated,
            string.IsNullOrEmpty(header) ? $"the {Header} header is missing" : $"the {Header} signature does not match the body", Header).ToException();

    public static bool TryParse(string? header, out byte[] digest)
    {
        digest = [];
        var value = header?.Trim();
        if (value is null || value.Length != Prefix.Length + DigestBytes * 2 || !value.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }
        try
        {
            digest = Convert.FromHexString(value.AsSpan(Prefix.Length));
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
