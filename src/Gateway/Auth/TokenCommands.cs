using System.CommandLine;
using SandboxBroker.Gateway.Api;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Auth;

/// <summary>
/// <c>sandboxbroker-gateway tokens create|list|revoke</c>: token management straight against Postgres, for a first
/// tenant token or when no admin token is at hand. Uses the same connection settings as the gateway.
/// </summary>
public static class TokenCommands
{
    public static async Task<int> RunAsync(string[] args, IConfiguration configuration)
    {
        var tenant = new Option<string>("--tenant") { Description = "the tenant the token acts for", Required = true };
        var scopes = new Option<string[]>("--scope") { Description = "claims (default) and/or admin; repeat for several", AllowMultipleArgumentsPerToken = true };
        var name = new Option<string?>("--name") { Description = "a note on what the token is for" };
        var expiresDays = new Option<int?>("--expires-in-days") { Description = "the token stops working after this many days" };
        var create = new Command("create", "mint a token and print it (shown once)") { tenant, scopes, name, expiresDays };
        create.SetAction((parse, ct) => WithStore(configuration, async store =>
        {
            var minted = await store.CreateAsync(TokenRules.MintableTenant(parse.GetValue(tenant), Webhooks.WebhookSettings.Bind(configuration).Tenant), TokenRules.Scopes(parse.GetValue(scopes)),
                parse.GetValue(name), parse.GetValue(expiresDays) is { } days ? TimeSpan.FromDays(days) : null, ct);
            Console.Error.WriteLine($"token {minted.Token.TokenId} for tenant '{minted.Token.Tenant}' ({string.Join(",", minted.Token.Scopes)}); it is shown only now:");
            Console.WriteLine(minted.Secret);
        }));

        var listTenant = new Option<string?>("--tenant") { Description = "only this tenant's tokens" };
        var list = new Command("list", "list tokens (never their secrets)") { listTenant };
        list.SetAction((parse, ct) => WithStore(configuration, async store =>
        {
            foreach (var t in await store.ListAsync(parse.GetValue(listTenant), ct))
            {
                var state = t.RevokedAt is not null ? "revoked" : t.ExpiresAt is { } e && e < DateTimeOffset.UtcNow ? "expired" : "live";
                Console.WriteLine($"{t.TokenId}\t{t.Tenant}\t{string.Join(",", t.Scopes)}\t{state}\t{t.Name}");
            }
        }));

        var tokenId = new Argument<string>("token-id") { Description = "the token's id (tok_…)" };
        var revoke = new Command("revoke", "revoke a token") { tokenId };
        revoke.SetAction((parse, ct) => WithStore(configuration, async store =>
        {
            var revoked = await store.RevokeAsync(parse.GetValue(tokenId)!, ct);
            if (revoked is null)
            {
                throw ApiError.NotFound($"token '{parse.GetValue(tokenId)}' does not exist").ToException();
            }
            Console.WriteLine($"revoked {revoked.TokenId} (tenant '{revoked.Tenant}')");
        }));

        var root = new RootCommand("SandboxBroker API tokens") { create, list, revoke };
        return await root.Parse(args).InvokeAsync();
    }

    private static async Task<int> WithStore(IConfiguration configuration, Func<ApiTokenStore, Task> action)
    {
        try
        {
            await using var dataSource = PostgresConnection.CreateDataSource(PostgresOptions.Resolve(configuration), "sandboxbroker-tokens");
            // The tokens table may not exist yet when no silo has started: the migrations are idempotent.
            await new SchemaMigrator(dataSource, Microsoft.Extensions.Logging.Abstractions.NullLogger<SchemaMigrator>.Instance).ApplyAsync();
            await action(new ApiTokenStore(dataSource, TimeProvider.System));
            return 0;
        }
        catch (ApiErrorException e)
        {
            await Console.Error.WriteLineAsync($"tokens: {e.Error.Field}: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is StartupException or Npgsql.NpgsqlException)
        {
            await Console.Error.WriteLineAsync($"tokens: cannot reach Postgres: {e.Message}");
            return 2;
        }
    }
}
