using System.CommandLine;
using SandboxBroker.Client;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace SandboxBroker.Cli.Commands;

/// <summary>
/// <c>sandboxbroker watch</c>: pools and active leases, redrawn in place every --interval until Ctrl-C. Without a terminal
/// (or with --json) it prints one snapshot per interval instead, so it can feed a log; --count stops after that many.
/// </summary>
public static class WatchCommand
{
    public static Command Create()
    {
        var interval = new Option<string>("--interval") { Description = "time between refreshes (default 2s)", DefaultValueFactory = _ => "2s" };
        var limit = new Option<int>("--leases") { Description = "leases shown at most (default 20)", DefaultValueFactory = _ => 20 };
        var count = new Option<int?>("--count") { Description = "stop after this many refreshes" };
        var watch = new Command("watch", "a live view of pools and active leases") { interval, limit, count };
        watch.Action(async c =>
        {
            var period = TimeSpan.FromSeconds(Durations.Seconds(c.Value(interval), "--interval")!.Value);
            var leases = Math.Clamp(c.Value(limit), 1, 500);
            var remaining = c.Value(count);
            if (!c.Output.Interactive)
            {
                for (; remaining is null || remaining-- > 0; await Task.Delay(remaining == 0 ? TimeSpan.Zero : period, c.Cancellation))
                {
                    var snapshot = await SnapshotAsync(c.Client, leases, c.Cancellation);
                    c.Output.Write(snapshot, s => Render(s, c.Output));
                }
                return;
            }
            var first = await SnapshotAsync(c.Client, leases, c.Cancellation);
            await AnsiConsole.Live(Render(first, c.Output)).AutoClear(false).StartAsync(async live =>
            {
                while (remaining is null || --remaining > 0)
                {
                    await Task.Delay(period, c.Cancellation);
                    try
                    {
                        live.UpdateTarget(Render(await SnapshotAsync(c.Client, leases, c.Cancellation), c.Output));
                    }
                    catch (Exception e) when (e is BrokerApiException { IsTransient: true } or HttpRequestException or TimeoutException)
                    {
                        // A view that stops at the first hiccup is no use for watching a restart: show it and keep going.
                        live.UpdateTarget(new Text($"{c.Output.When(c.Output.Now)}: {e.Message}; retrying"));
                    }
                }
            });
        });
        return watch;
    }

    /// <summary>What one refresh shows: every pool's levels and the oldest active leases.</summary>
    public sealed record Snapshot(DateTimeOffset At, IReadOnlyList<Pool> Pools, SandboxPage Leases);

    private static async Task<Snapshot> SnapshotAsync(SandboxBrokerClient client, int leases, CancellationToken ct)
    {
        var pools = client.Pools.ListAsync(ct);
        var leased = client.Sandboxes.ListAsync(new SandboxQuery(Status: "leased", Limit: leases), ct);
        return new Snapshot(TimeProvider.System.GetUtcNow(), await pools, await leased);
    }

    private static IRenderable Render(Snapshot s, Output output) => new Rows(
        new Text($"SandboxBroker at {s.At.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z (Ctrl-C stops)", new Style(decoration: Decoration.Bold)),
        PoolCommands.Table(s.Pools),
        LeaseViews.Sandboxes(s.Leases.Items, output, claimsOnly: true),
        new Text(s.Leases.NextCursor is null ? $"{s.Leases.Items.Count} active leases" : $"the oldest {s.Leases.Items.Count} active leases shown"));
}
