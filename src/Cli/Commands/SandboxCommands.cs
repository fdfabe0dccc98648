using System.CommandLine;
using SandboxBroker.Client;

namespace SandboxBroker.Cli.Commands;

/// <summary><c>sandboxbroker sandboxes list|get</c>.</summary>
public static class SandboxCommands
{
    public static Command Create()
    {
        var sandboxes = new Command("sandboxes", "sandboxes (a tenant sees its own, an admin all)");
        sandboxes.Subcommands.Add(List());
        sandboxes.Subcommands.Add(Get());
        return sandboxes;
    }

    private static Command List()
    {
        var status = new Option<string?>("--status") { Description = "provisioning, ready, leased, deleting, deleted, failed or stale" };
        var pool = new Option<string?>("--pool") { Description = "only this pool's" };
        var owner = new Option<string?>("--owner") { Description = "only this owner's" };
        var limit = new Option<int?>("--limit") { Description = "at most this many per page (1-500, default 50)" };
        var cursor = new Option<string?>("--cursor") { Description = "the next_cursor of the previous page" };
        var all = new Option<bool>("--all") { Description = "follow next_cursor to the end" };
        var command = new Command("list", "sandboxes in creation order") { status, pool, owner, limit, cursor, all };
        command.Action(async c =>
        {
            var query = new SandboxQuery(c.Value(status), c.Value(pool), c.Value(owner), c.Value(limit), c.Value(cursor));
            var page = c.Value(all)
                ? new SandboxPage(await c.Client.Sandboxes.ListAllAsync(query, c.Cancellation).ToListAsync(c.Cancellation), null)
                : await c.Client.Sandboxes.ListAsync(query, c.Cancellation);
            c.Output.Write(page, p => LeaseViews.Sandboxes(p.Items, c.Output));
            if (!c.Output.Json && page.NextCursor is { } next)
            {
                Output.Note($"more: --cursor {next}");
            }
        });
        return command;
    }

    private static Command Get()
    {
        var id = new Argument<string>("sandbox-id") { Description = "the sandbox's id" };
        var command = new Command("get", "one sandbox, with its connection details") { id };
        command.Action(async c => c.Output.Write(await c.Client.Sandboxes.GetAsync(c.Value(id), c.Cancellation), s => LeaseViews.Sandbox(s, c.Output)));
        return command;
    }
}
