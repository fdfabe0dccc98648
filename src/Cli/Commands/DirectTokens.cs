using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using SandboxBroker.Client;
using SandboxBroker.Storage;
using MintedToken = SandboxBroker.Client.MintedToken;

namespace SandboxBroker.Cli.Commands;

/// <summary>
/// Token management straight against Postgres (<c>--postgres</c>), through the broker's own <see cref="ApiTokenStore"/>.
/// Answers have the API's shapes, and refusals its codes, so scripts and exit codes do not depend on the path taken.
/// </summary>
public static class DirectTokens
{
    public static Task<MintedToken> CreateAsync(string connectionString, string tenant, string[]? scopes, string? name, int? lifetimeSeconds,
        CancellationToken ct)
    {
        if (!ApiTokenStore.IsValidTenant(tenant))
        {
            throw Refused("tenant", ApiTokenStore.TenantRule);
        }
        IReadOnlyList<string> chosen = scopes is { Length: > 0 } ? scopes.Distinct().ToArray() : ["claims"];
        if (chosen.FirstOrDefault(s => !ApiTokenStore.KnownScopes.Contains(s)) is { } unknown)
        {
            throw Refused("scopes", $"unknown scope '{unknown}'; scopes are {string.Join(", ", ApiTokenStore.KnownScopes)}");
        }
        if (name is { Length: > 100 })
        {
            throw Refused("name", "name is at most 100 characters");
        }
        return WithStoreAsync(connectionString, async store =>
        {
            var minted = await store.CreateAsync(tenant, chosen, name, lifetimeSeconds is { } s ? TimeSpan.FromSeconds(s) : null, ct);
            return new MintedToken(minted.Secret, View(minted.Token));
        });
    }

    public static Task<IReadOnlyList<Client.ApiToken>> ListAsync(string connectionString, string? tenant, CancellationToken ct) =>
        WithStoreAsync(connectionString, async store => (IReadOnlyList<Client.ApiToken>)(await store.ListAsync(tenant, ct)).Select(View).ToList());

    public static Task<Client.ApiToken> RevokeAsync(string connectionString, string tokenId, CancellationToken ct) =>
        WithStoreAsync(connectionString, async store => View(await store.RevokeAsync(tokenId, ct)
            ?? throw new BrokerApiException(HttpStatusCode.NotFound, BrokerErrorCodes.NotFound, $"token '{tokenId}' does not exist", null)));

    private static async Task<T> WithStoreAsync<T>(string connectionString, Func<ApiTokenStore, Task<T>> action)
    {
        try
        {
            await using var dataSource = PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-cli");
            // The tokens table may not exist yet when no silo has started: the migrations are idempotent.
            await new SchemaMigrator(dataSource, NullLogger<SchemaMigrator>.Instance).ApplyAsync();
            return await action(new ApiTokenStore(dataSource, TimeProvider.System));
        }
        catch (StartupException e)
        {
            throw new UsageException($"--postgres: {e.Message}");
        }
    }

    private static BrokerApiException Refused(string field, string message) =>
        new(HttpStatusCode.BadRequest, BrokerErrorCodes.InvalidArgument, message, null, field);

    private static Client.ApiToken View(Storage.ApiToken t) =>
        new(t.TokenId, t.Tenant, t.Scopes, t.Name, t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt);
}
