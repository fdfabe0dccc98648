using System.CommandLine;
using SandboxBroker.Client;
using Spectre.Console;

namespace SandboxBroker.Cli.Commands;

// The contract's SandboxBroker.Lease (via src/Storage) would win over the client's by namespace nesting.
using Lease = SandboxBroker.Client.Lease;

/// <summary><c>sandboxbroker claims acquire|get|touch|extend|release|history|list</c>.</summary>
public static class ClaimCommands
{
    public static Command Create()
    {
        var claims = new Command("claims", "the lease of a claim key (one sandbox per key)");
        claims.Subcommands.Add(Acquire());
        claims.Subcommands.Add(Simple("get", "the key's active lease and its sandbox", (c, key) => c.Client.Claims.GetAsync(key, c.Cancellation)));
        claims.Subcommands.Add(Simple("touch", "record activity: pushes the idle deadline out", (c, key) => c.Client.Claims.TouchAsync(key, c.Cancellation)));
        claims.Subcommands.Add(Extend());
        claims.Subcommands.Add(Release());
        claims.Subcommands.Add(History());
        claims.Subcommands.Add(List());
        return claims;
    }

    private static Argument<string> KeyArgument() => new("key") { Description = "the claim key, e.g. github:octo/repo#42" };

    private static Command Acquire()
    {
        var key = KeyArgument();
        var pool = new Option<string?>("--pool") { Description = "the pool to take the sandbox from (default: the broker's)" };
        var ttl = new Option<string?>("--ttl") { Description = "lease duration: seconds or 90s, 15m, 2h, 1d (default: the pool's)" };
        var idle = new Option<string?>("--idle-timeout") { Description = "end the lease after this long without activity" };
        var labels = new Option<string[]>("--label") { Description = "a label key=value; repeat for several", AllowMultipleArgumentsPerToken = false };
        var name = new Option<string?>("--name") { Description = "the sandbox's name (unique among live sandboxes)" };
        var owner = new Option<string?>("--owner") { Description = "who the lease counts against (default: the claim key)" };
        var command = new Command("acquire", "the key's sandbox: a new lease, or the active one again (idempotent)")
        {
            key, pool, ttl, idle, labels, name, owner,
        };
        command.Action(async c =>
        {
            var options = new AcquireOptions(c.Value(pool), Durations.Seconds(c.Value(ttl), "--ttl"), Durations.Seconds(c.Value(idle), "--idle-timeout"),
                ParseLabels(c.Value(labels)), c.Value(name), c.Value(owner));
            var claimKey = c.Value(key);
            var result = await WithProgress(c, $"acquiring {claimKey}", () => c.Client.Claims.AcquireAsync(claimKey, options, c.Cancellation));
            c.Output.Write(result.Lease, l => LeaseViews.Lease(l, c.Output, result.Outcome));
        });
        return command;
    }

    private static Command Extend()
    {
        var key = KeyArgument();
        var ttl = new Option<string>("--ttl") { Description = "the new TTL, from now: seconds or 15m, 2h, 1d", Required = true };
        var command = new Command("extend", "move the lease's TTL deadline to now + --ttl") { key, ttl };
        command.Action(async c =>
        {
            var lease = await c.Client.Claims.ExtendAsync(c.Value(key), Durations.Seconds(c.Value(ttl), "--ttl")!.Value, c.Cancellation);
            c.Output.Write(lease, l => LeaseViews.Lease(l, c.Output));
        });
        return command;
    }

    private static Command Release()
    {
        var key = KeyArgument();
        var reason = new Option<string?>("--reason") { Description = "why, kept with the ended lease" };
        var command = new Command("release", "release the lease; its sandbox is deleted") { key, reason };
        command.Action(async c =>
        {
            var lease = await c.Client.Claims.ReleaseAsync(c.Value(key), c.Value(reason), c.Cancellation);
            c.Output.Write(lease, l => LeaseViews.Lease(l, c.Output));
        });
        return command;
    }

    private static Command History()
    {
        var key = KeyArgument();
        var command = new Command("history", "the active lease, then ended leases, newest first") { key };
        command.Action(async c =>
        {
            var history = await c.Client.Claims.HistoryAsync(c.Value(key), c.Cancellation);
            c.Output.Write(history, h =>
            {
                var table = Output.Table("lease", "status", "sandbox", "acquired", "ended", "reason");
                foreach (var l in h.Leases)
                {
                    Output.Row(table, $"#{l.LeaseNumber}", l.Status, l.SandboxId, c.Output.When(l.AcquiredAt), l.EndedAt is null ? "-" : c.Output.When(l.EndedAt), l.EndReason);
                }
                return table;
            });
        });
        return command;
    }

    /// <summary>Active leases are leased sandboxes: the list reads the sandbox index (one page, or --all).</summary>
    private static Command List()
    {
        var pool = new Option<string?>("--pool") { Description = "only this pool's" };
        var owner = new Option<string?>("--owner") { Description = "only this owner's" };
        var limit = new Option<int?>("--limit") { Description = "at most this many (1-500, default 50)" };
        var cursor = new Option<string?>("--cursor") { Description = "the next_cursor of the previous page" };
        var command = new Command("list", "active leases (leased sandboxes), oldest first") { pool, owner, limit, cursor };
        command.Action(async c =>
        {
            var page = await c.Client.Sandboxes.ListAsync(new SandboxQuery("leased", c.Value(pool), c.Value(owner), c.Value(limit), c.Value(cursor)), c.Cancellation);
            c.Output.Write(page, p => LeaseViews.Sandboxes(p.Items, c.Output, claimsOnly: true));
            if (!c.Output.Json && page.NextCursor is { } next)
            {
                Output.Note($"more: --cursor {next}");
            }
        });
        return command;
    }

    private static Command Simple(string name, string description, Func<CommandContext, string, Task<Lease>> call)
    {
        var key = KeyArgument();
        var command = new Command(name, description) { key };
        command.Action(async c => c.Output.Write(await call(c, c.Value(key)), l => LeaseViews.Lease(l, c.Output)));
        return command;
    }

    private static Dictionary<string, string>? ParseLabels(string[]? labels)
    {
        if (labels is null || labels.Length == 0)
        {
            return null;
        }
        var parsed = new Dictionary<string, string>();
        foreach (var label in labels)
        {
            var eq = label.IndexOf('=');
            if (eq <= 0)
            {
                throw new UsageException($"--label: '{label}' is not key=value");
            }
            parsed[label[..eq]] = label[(eq + 1)..];
        }
        return parsed;
    }

    /// <summary>
    /// A cold acquire waits for the provider to create a sandbox: people see a spinner with the time waited and any retry
    /// (overloaded, unavailable); scripts and --json see nothing until the answer.
    /// </summary>
    private static async Task<T> WithProgress<T>(CommandContext c, string what, Func<Task<T>> call)
    {
        if (!c.Output.Interactive)
        {
            return await call();
        }
        var started = TimeProvider.System.GetTimestamp();
        string? retrying = null;
        c.OnRetry = r => retrying = $"{(r.Status is { } s ? $"HTTP {s}" : "no answer")}, retry {r.Attempt} in {r.Delay.TotalSeconds:0.#}s";
        var task = call();
        await AnsiConsole.Status().Spinner(Spinner.Known.Dots).StartAsync(Markup.Escape(what), async status =>
        {
            while (!task.IsCompleted)
            {
                var waited = TimeProvider.System.GetElapsedTime(started);
                var note = retrying is not null ? $"; {retrying}" : waited > TimeSpan.FromSeconds(1) ? " (waiting for a sandbox to be created)" : "";
                status.Status(Markup.Escape($"{what}: {waited.TotalSeconds:0}s{note}"));
                await Task.WhenAny(task, Task.Delay(TimeSpan.FromMilliseconds(200), c.Cancellation));
                c.Cancellation.ThrowIfCancellationRequested();
            }
        });
        return await task;
    }
}
