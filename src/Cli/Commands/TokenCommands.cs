using System.CommandLine;
using SandboxBroker.Client;

namespace SandboxBroker.Cli.Commands;

/// <summary>
/// <c>sandboxbroker tokens create|list|revoke</c>: through the API with an admin token, or with <c>--postgres</c> straight
/// against the broker's database, for the first token of a new installation (no admin token needed, only the database).
/// </summary>
public static class TokenCommands
{
    private static Option<string?> PostgresOption() => new("--postgres")
    {
        Description = "an Npgsql connection string: manage tokens in the database directly instead of through the API",
    };

    public static Command Create()
    {
        var tokens = new Command("tokens", "API tokens (admin token, or --postgres)");
        tokens.Subcommands.Add(Mint());
        tokens.Subcommands.Add(List());
        tokens.Subcommands.Add(Revoke());
        return tokens;
    }

    private static Command Mint()
    {
        var tenant = new Option<string>("--tenant") { Description = "the tenant the token acts for", Required = true };
        var scopes = new Option<string[]>("--scope") { Description = "claims (default) and/or admin; repeat for several" };
        var name = new Option<string?>("--name") { Description = "a note on what the token is for" };
        var expires = new Option<string?>("--expires-in") { Description = "the token stops working after this long (e.g. 30d)" };
        var postgres = PostgresOption();
        var command = new Command("create", "mint a token; the secret is printed once, on stdout") { tenant, scopes, name, expires, postgres };
        command.Action(async c =>
        {
            var lifetime = Durations.Seconds(c.Value(expires), "--expires-in");
            var minted = c.Value(postgres) is { } connectionString
                ? await DirectTokens.CreateAsync(connectionString, c.Value(tenant), c.Value(scopes), c.Value(name), lifetime, c.Cancellation)
                : await c.Client.Tokens.CreateAsync(new TokenRequest(c.Value(tenant), c.Value(scopes) is { Length: > 0 } s ? s : null, c.Value(name), lifetime),
                    c.Cancellation);
            if (c.Output.Json)
            {
                c.Output.WriteJson(minted);
                return;
            }
            Output.Note($"token {minted.Details.TokenId} for tenant '{minted.Details.Tenant}' ({string.Join(",", minted.Details.Scopes)}); it is shown only now:");
            Console.Out.WriteLine(minted.Token);
        });
        return command;
    }

    private static Command List()
    {
        var tenant = new Option<string?>("--tenant") { Description = "only this tenant's tokens" };
        var postgres = PostgresOption();
        var command = new Command("list", "tokens, never their secrets") { tenant, postgres };
        command.Action(async c =>
        {
            var tokens = c.Value(postgres) is { } connectionString
                ? await DirectTokens.ListAsync(connectionString, c.Value(tenant), c.Cancellation)
                : await c.Client.Tokens.ListAsync(c.Value(tenant), c.Cancellation);
            c.Output.Write(new TokenList(tokens), list =>
            {
                var table = Output.Table("token", "tenant", "scopes", "state", "name", "created", "last used");
                foreach (var t in list.Items)
                {
                    var state = t.RevokedAt is not null ? "revoked" : t.ExpiresAt is { } e && e < c.Output.Now ? "expired" : "live";
                    Output.Row(table, t.TokenId, t.Tenant, string.Join(",", t.Scopes), state, t.Name, c.Output.When(t.CreatedAt), c.Output.When(t.LastUsedAt));
                }
                return table;
            });
        });
        return command;
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("token-id") { Description = "the token's id (tok_…)" };
        var postgres = PostgresOption();
        var command = new Command("revoke", "revoke a token (at once on this gateway, within Auth:CacheTtl on others)") { id, postgres };
        command.Action(async c =>
        {
            var token = c.Value(postgres) is { } connectionString
                ? await DirectTokens.RevokeAsync(connectionString, c.Value(id), c.Cancellation)
                : await c.Client.Tokens.RevokeAsync(c.Value(id), c.Cancellation);
            if (c.Output.Json)
            {
                c.Output.WriteJson(token);
                return;
            }
            Console.Out.WriteLine($"revoked {token.TokenId} (tenant '{token.Tenant}')");
        });
        return command;
    }
}
