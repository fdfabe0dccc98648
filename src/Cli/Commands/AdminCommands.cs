using System.CommandLine;
using Spectre.Console;

namespace SandboxBroker.Cli.Commands;

/// <summary><c>sandboxbroker admin stats|sync|cleanup</c> (admin scope).</summary>
public static class AdminCommands
{
    public static Command Create()
    {
        var admin = new Command("admin", "operators: counts, reconcile and cleanup now (admin token)");

        var stats = new Command("stats", "sandboxes and claims by status, and every pool's levels");
        stats.Action(async c => c.Output.Write(await c.Client.Admin.StatsAsync(c.Cancellation), s =>
        {
            var counts = Output.Table("what", "status", "count");
            foreach (var (status, count) in s.Sandboxes.OrderBy(kv => kv.Key))
            {
                Output.Row(counts, "sandboxes", status, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            foreach (var (status, count) in s.Claims.OrderBy(kv => kv.Key))
            {
                Output.Row(counts, "claims", status, count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            return new Rows(counts, PoolCommands.Table(s.Pools));
        }));
        admin.Subcommands.Add(stats);

        var sync = new Command("sync", "reconcile every provider now: unowned provider sandboxes are deleted, vanished ones marked stale");
        sync.Action(async c => c.Output.Write(await c.Client.Admin.SyncAsync(c.Cancellation), r =>
        {
            var table = Output.Table("provider", "seen", "adopted", "deleted", "marked stale", "errors");
            foreach (var p in r.Providers)
            {
                Output.Row(table, p.Provider, $"{p.Seen}", $"{p.Adopted}", $"{p.Deleted}", $"{p.MarkedStale}",
                    p.Errors == 0 ? "0" : $"{p.Errors}: {string.Join("; ", p.ErrorMessages)}");
            }
            return table;
        }));
        admin.Subcommands.Add(sync);

        var cleanup = new Command("cleanup", "expire overdue leases and retry every pending deletion now");
        cleanup.Action(async c => c.Output.Write(await c.Client.Admin.CleanupAsync(c.Cancellation), r => Output.Fields(
        [
            ("overdue claims checked", $"{r.OverdueClaimsChecked}"),
            ("claims expired", $"{r.ClaimsExpired}"),
            ("deletions retried", $"{r.DeletionsRetried}"),
            ("errors", $"{r.Errors}"),
        ])));
        admin.Subcommands.Add(cleanup);
        return admin;
    }
}
