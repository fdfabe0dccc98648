using System.Security.Cryptography;
using Npgsql;
using NpgsqlTypes;

namespace SandboxBroker.Storage;

/// <summary>An API token as stored: never the token itself, only its SHA-256 hash.</summary>
public sealed record ApiToken(
    string TokenId,
    string Tenant,
    IReadOnlyList<string> Scopes,
    string? Name,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsedAt);

/// <summary>A freshly minted token: the secret is shown once and cannot be recovered later.</summary>
public sealed record MintedToken(ApiToken Token, string Secret);

/// <summary>Bearer tokens in broker_api_tokens. Tokens are 256-bit random strings; only their SHA-256 is stored.</summary>
public sealed class ApiTokenStore(NpgsqlDataSource dataSource, TimeProvider time)
{
    public const string SecretPrefix = "sbk_";
    public static readonly IReadOnlyList<string> KnownScopes = ["claims", "admin"];

    public const string TenantRule = TenantName.Rule;

    /// <summary>What a tenant name may be (a token's tenant becomes the claims' tenant).</summary>
    public static bool IsValidTenant(string? tenant) => TenantName.IsValid(tenant);

    public static byte[] Hash(string secret) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret));

    public async Task<MintedToken> CreateAsync(string tenant, IReadOnlyList<string> scopes, string? name, TimeSpan? lifetime, CancellationToken ct)
    {
        var secret = SecretPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var tokenId = "tok_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var now = time.GetUtcNow();
        DateTimeOffset? expires = lifetime is { } l ? now + l : null;
        await using var command = dataSource.CreateCommand("""
            INSERT INTO broker_api_tokens (token_id, token_hash, tenant, scopes, name, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = tokenId });
        command.Parameters.Add(new NpgsqlParameter { Value = Hash(secret) });
        command.Parameters.Add(new NpgsqlParameter { Value = tenant });
        command.Parameters.Add(new NpgsqlParameter { Value = scopes.ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)name ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = now.UtcDateTime });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)expires?.UtcDateTime ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await command.ExecuteNonQueryAsync(ct);
        return new MintedToken(new ApiToken(tokenId, tenant, scopes, name, now, expires, null, null), secret);
    }

    /// <summary>How stale a token's last_used_at may be before a lookup writes it again.</summary>
    public static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The live (not revoked, not expired) token with this hash; null otherwise. A read: an unknown token costs no write.
    /// A live token's last_used_at is stamped when it is older than <see cref="LastUsedResolution"/>, so a token in
    /// steady use costs one small write a minute at most (the gateway's cache asks only every few seconds anyway).
    /// </summary>
    public async Task<ApiToken?> FindLiveAsync(byte[] hash, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        ApiToken? token;
        await using (var command = dataSource.CreateCommand("""
            SELECT token_id, tenant, scopes, name, created_at, expires_at, revoked_at, last_used_at FROM broker_api_tokens
            WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = hash });
            command.Parameters.Add(new NpgsqlParameter { Value = now.UtcDateTime });
            await using var reader = await command.ExecuteReaderAsync(ct);
            token = await reader.ReadAsync(ct) ? Read(reader) : null;
        }
        if (token is not null && (token.LastUsedAt is not { } used || now - used >= LastUsedResolution))
        {
            await using var stamp = dataSource.CreateCommand("UPDATE broker_api_tokens SET last_used_at = $2 WHERE token_id = $1");
            stamp.Parameters.Add(new NpgsqlParameter { Value = token.TokenId });
            stamp.Parameters.Add(new NpgsqlParameter { Value = now.UtcDateTime });
            await stamp.ExecuteNonQueryAsync(ct);
            token = token with { LastUsedAt = now };
        }
        return token;
    }

    public async Task<IReadOnlyList<ApiToken>> ListAsync(string? tenant, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT token_id, tenant, scopes, name, created_at, expires_at, revoked_at, last_used_at
            FROM broker_api_tokens WHERE ($1::text IS NULL OR tenant = $1) ORDER BY created_at, token_id
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)tenant ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        var tokens = new List<ApiToken>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            tokens.Add(Read(reader));
        }
        return tokens;
    }

    /// <summary>Revokes a token; answers the token (revoked now or before), or null when the id is unknown.</summary>
    public async Task<ApiToken?> RevokeAsync(string tokenId, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE broker_api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE token_id = $1
            RETURNING token_id, tenant, scopes, name, created_at, expires_at, revoked_at, last_used_at
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = tokenId });
        command.Parameters.Add(new NpgsqlParameter { Value = time.GetUtcNow().UtcDateTime });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    private static ApiToken Read(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetFieldValue<string[]>(2), r.IsDBNull(3) ? null : r.GetString(3),
        r.GetFieldValue<DateTimeOffset>(4),
        r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5),
        r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6),
        r.IsDBNull(7) ? null : r.GetFieldValue<DateTimeOffset>(7));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
