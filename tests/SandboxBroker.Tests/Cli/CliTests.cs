using System.Text.Json;
using SandboxBroker.Tests.Api;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Cli;

using ExitCodes = SandboxBroker.Cli.ExitCodes;

/// <summary>The built `sandboxbroker` CLI as a separate process against a real cluster (a silo on Postgres and the gateway).</summary>
[Collection(ApiCollection.Name)]
public sealed class CliTests(ApiFixture fixture) : IDisposable
{
    private readonly CliProcess _cli = new(fixture.Gateway.Url);

    [Fact]
    public async Task Acquire_list_as_table_and_json_release_and_the_exit_codes_of_what_follows()
    {
        var token = await fixture.Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims");
        var key = ApiFixture.NewKey("github:octo/cli#");

        var acquired = (await _cli.RunAsync("claims", "acquire", key, "--ttl", "10m", "--label", "issue=42", "--token", token, "--json")).Json();
        Assert.Equal(key, acquired.Str("claim_key"));
        Assert.Equal("active", acquired.Str("status"));
        Assert.Equal("42", acquired.GetProperty("labels").Str("issue"));
        var sandboxId = acquired.Str("sandbox_id");

        var again = (await _cli.RunAsync("claims", "acquire", key, "--token", token, "--json")).Json();
        Assert.Equal(sandboxId, again.Str("sandbox_id")); // idempotent: the same lease

        var table = await _cli.RunAsync("claims", "list", "--token", token);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains(key, table.Stdout);
        Assert.Contains(sandboxId, table.Stdout);

        var listed = (await _cli.RunAsync("claims", "list", "--token", token, "--json")).Json();
        var item = Assert.Single(listed.GetProperty("items").EnumerateArray(), i => i.Str("claim_key") == key);
        Assert.Equal(sandboxId, item.Str("sandbox_id"));
        Assert.Equal("leased", item.Str("status"));

        var released = (await _cli.RunAsync("claims", "release", key, "--reason", "done", "--token", token, "--json")).Json();
        Assert.Equal("released", released.Str("status"));
        Assert.Equal("done", released.Str("end_reason"));

        var get = await _cli.RunAsync("claims", "get", key, "--token", token);
        Assert.True(get.ExitCode == ExitCodes.NotFound, get.ToString());
        Assert.Contains("NOT_FOUND", get.Stderr);

        var touch = await _cli.RunAsync("claims", "touch", key, "--token", token, "--json");
        Assert.True(touch.ExitCode == ExitCodes.Conflict, touch.ToString());
        using var error = JsonDocument.Parse(touch.Stdout); // with --json the error shape is on stdout
        Assert.Equal("LEASE_NOT_ACTIVE", error.RootElement.GetProperty("error").Str("code"));

        var history = (await _cli.RunAsync("claims", "history", key, "--token", token, "--json")).Json();
        Assert.Equal("released", history.GetProperty("leases")[0].Str("status"));
    }

    [Fact]
    public async Task A_bad_token_exits_5_a_refused_value_2_and_a_usage_error_2()
    {
        var unauthenticated = await _cli.RunAsync("pools", "list", "--token", "sbk_not-a-token");
        Assert.True(unauthenticated.ExitCode == ExitCodes.Auth, unauthenticated.ToString());
        Assert.Contains("UNAUTHENTICATED", unauthenticated.Stderr);

        var tenantToken = await fixture.Gateway.MintTokenAsync(ApiFixture.NewTenant(), "claims");
        var forbidden = await _cli.RunAsync("admin", "stats", "--token", tenantToken);
        Assert.True(forbidden.ExitCode == ExitCodes.Auth, forbidden.ToString());

        var refused = await _cli.RunAsync("sandboxes", "list", "--status", "sleeping", "--token", BrokerGateway.AdminToken);
        Assert.True(refused.ExitCode == ExitCodes.Usage, refused.ToString());
        Assert.Contains("INVALID_ARGUMENT [status]", refused.Stderr);

        var usage = await _cli.RunAsync("claims", "extend", "some:key", "--token", BrokerGateway.AdminToken); // --ttl missing
        Assert.True(usage.ExitCode == ExitCodes.Usage, usage.ToString());
    }

    [Fact]
    public async Task Url_and_token_come_from_the_config_file_when_no_flag_or_variable_gives_them()
    {
        await File.WriteAllTextAsync(_cli.ConfigPath, JsonSerializer.Serialize(new { url = fixture.Gateway.Url, token = BrokerGateway.AdminToken }));

        var pools = (await _cli.RunAsync(["pools", "list", "--json"], new Dictionary<string, string>(), withUrl: false)).Json();
        Assert.Contains(pools.GetProperty("items").EnumerateArray(), p => p.Str("name") == "default");

        // The environment wins over the file.
        var overridden = await _cli.RunAsync(["pools", "list"], new Dictionary<string, string> { ["SANDBOXBROKER_TOKEN"] = "sbk_wrong" }, withUrl: false);
        Assert.True(overridden.ExitCode == ExitCodes.Auth, overridden.ToString());
    }

    [Fact]
    public async Task Tokens_minted_in_Postgres_directly_and_through_the_API_work_and_a_revoked_one_exits_5()
    {
        var direct = await _cli.RunAsync(["tokens", "create", "--tenant", ApiFixture.NewTenant(), "--name", "first start",
            "--postgres", fixture.Broker.Database.ConnectionString], new Dictionary<string, string>(), withUrl: false);
        Assert.True(direct.ExitCode == 0, direct.ToString());
        var directSecret = direct.Stdout.Trim(); // the secret alone on stdout, for $(...)
        Assert.StartsWith("sbk_", directSecret);
        Assert.Equal(0, (await _cli.RunAsync("pools", "list", "--token", directSecret)).ExitCode);

        var minted = (await _cli.RunAsync("tokens", "create", "--tenant", ApiFixture.NewTenant(), "--token", BrokerGateway.AdminToken, "--json")).Json();
        var secret = minted.Str("token");
        var tokenId = minted.GetProperty("details").Str("token_id");
        var key = ApiFixture.NewKey();
        Assert.Equal(0, (await _cli.RunAsync("claims", "acquire", key, "--token", secret)).ExitCode);

        var listed = (await _cli.RunAsync(["tokens", "list", "--json", "--postgres", fixture.Broker.Database.ConnectionString],
            new Dictionary<string, string>(), withUrl: false)).Json();
        Assert.Contains(listed.GetProperty("items").EnumerateArray(), t => t.Str("token_id") == tokenId);

        Assert.Equal(0, (await _cli.RunAsync("tokens", "revoke", tokenId, "--token", BrokerGateway.AdminToken)).ExitCode);
        var afterRevoke = await _cli.RunAsync("claims", "get", key, "--token", secret);
        Assert.True(afterRevoke.ExitCode == ExitCodes.Auth, afterRevoke.ToString());

        var unknown = await _cli.RunAsync("tokens", "revoke", "tok_0000000000000000", "--token", BrokerGateway.AdminToken);
        Assert.True(unknown.ExitCode == ExitCodes.NotFound, unknown.ToString());
    }

    [Fact]
    public async Task Pools_set_stats_and_one_snapshot_of_watch_show_the_pool()
    {
        var pool = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var set = (await _cli.RunAsync("pools", "set", pool, "--min-ready", "0", "--max-total", "3", "--default-ttl", "15m",
            "--token", BrokerGateway.AdminToken, "--json")).Json();
        Assert.Equal(900, set.GetProperty("config").GetProperty("default_ttl_seconds").GetInt32());

        var stats = (await _cli.RunAsync("admin", "stats", "--token", BrokerGateway.AdminToken, "--json")).Json();
        Assert.Contains(stats.GetProperty("pools").EnumerateArray(), p => p.Str("name") == pool);

        var watch = await _cli.RunAsync("watch", "--count", "1", "--token", BrokerGateway.AdminToken);
        Assert.True(watch.ExitCode == 0, watch.ToString());
        Assert.Contains(pool, watch.Stdout);
    }

    public void Dispose() => _cli.Dispose();
}
