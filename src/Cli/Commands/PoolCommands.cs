using System.CommandLine;
using SandboxBroker.Client;
using Spectre.Console.Rendering;

namespace SandboxBroker.Cli.Commands;

/// <summary><c>sandboxbroker pools list|get|set</c>.</summary>
public static class PoolCommands
{
    public static Command Create()
    {
        var pools = new Command("pools", "warm pools: configuration and levels");
        var list = new Command("list", "every pool with its levels");
        list.Action(async c => c.Output.Write(new PoolList(await c.Client.Pools.ListAsync(c.Cancellation)), p => Table(p.Items)));
        pools.Subcommands.Add(list);

        var name = new Argument<string>("name") { Description = "the pool's name" };
        var get = new Command("get", "one pool: configuration and levels") { name };
        get.Action(async c => c.Output.Write(await c.Client.Pools.GetAsync(c.Value(name), c.Cancellation), Details));
        pools.Subcommands.Add(get);
        pools.Subcommands.Add(Set());
        return pools;
    }

    public static IRenderable Table(IEnumerable<Pool> pools)
    {
        var table = Output.Table("pool", "provider", "ready", "provisioning", "leased", "deleting", "total", "min ready", "max total");
        foreach (var p in pools)
        {
            Output.Row(table, p.Name, p.Config.Provider, N(p.Levels.Ready), N(p.Levels.Provisioning), N(p.Levels.Leased), N(p.Levels.Deleting),
                N(p.Levels.Total), N(p.Config.MinReady), N(p.Config.MaxTotal));
        }
        return table;
    }

    private static IRenderable Details(Pool p) => Output.Fields(
    [
        ("pool", p.Name),
        ("provider", p.Config.Provider),
        ("template", p.Config.Template),
        ("levels", $"{p.Levels.Ready} ready, {p.Levels.Provisioning} provisioning, {p.Levels.Leased} leased, {p.Levels.Deleting} deleting ({p.Levels.Total} total)"),
        ("min ready", N(p.Config.MinReady)),
        ("max total", N(p.Config.MaxTotal)),
        ("default ttl", Durations.Format(TimeSpan.FromSeconds(p.Config.DefaultTtlSeconds))),
        ("max ttl", Durations.Format(TimeSpan.FromSeconds(p.Config.MaxTtlSeconds))),
        ("idle timeout", p.Config.IdleTimeoutSeconds is { } idle ? Durations.Format(TimeSpan.FromSeconds(idle)) : "none"),
        ("on empty", p.Config.OnEmpty),
        ("max concurrent creates", N(p.Config.MaxConcurrentCreates)),
    ]);

    private static Command Set()
    {
        var name = new Argument<string>("name") { Description = "the pool's name (created when new)" };
        var provider = new Option<string?>("--provider") { Description = "local, postgres-schema, daytona or e2b" };
        var template = new Option<string?>("--template") { Description = "what the provider builds from (snapshot, template, SQL file)" };
        var minReady = new Option<int?>("--min-ready") { Description = "sandboxes kept warm" };
        var maxTotal = new Option<int?>("--max-total") { Description = "live sandboxes at most" };
        var defaultTtl = new Option<string?>("--default-ttl") { Description = "a lease's TTL when the acquire gives none (15m, 1h, …)" };
        var maxTtl = new Option<string?>("--max-ttl") { Description = "the longest TTL an acquire may ask" };
        var idle = new Option<string?>("--idle-timeout") { Description = "end leases after this long without activity" };
        var onEmpty = new Option<string?>("--on-empty") { Description = "create (a cold create) or fail (NO_SANDBOXES_AVAILABLE)" };
        onEmpty.AcceptOnlyFromAmong("create", "fail");
        var creates = new Option<int?>("--max-concurrent-creates") { Description = "provider creates in flight at most" };
        var command = new Command("set", "create a pool or change the settings given (admin)")
        {
            name, provider, template, minReady, maxTotal, defaultTtl, maxTtl, idle, onEmpty, creates,
        };
        command.Action(async c =>
        {
            var settings = new PoolSettings(c.Value(provider), c.Value(template), c.Value(minReady), c.Value(maxTotal),
                Durations.Seconds(c.Value(defaultTtl), "--default-ttl"), Durations.Seconds(c.Value(maxTtl), "--max-ttl"),
                Durations.Seconds(c.Value(idle), "--idle-timeout"), c.Value(onEmpty), c.Value(creates));
            var result = await c.Client.Pools.PutAsync(c.Value(name), settings, c.Cancellation);
            if (!c.Output.Json)
            {
                Output.Note(result.Created ? $"created pool {result.Pool.Name}" : $"changed pool {result.Pool.Name}");
            }
            c.Output.Write(result.Pool, Details);
        });
        return command;
    }

    private static string N(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
