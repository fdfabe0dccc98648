using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// One pool's sweep (see <see cref="ISweeperGrain"/>). The claims and sandboxes write their wake time into their index
/// rows in the same statement as their state, so the index is exact and one query by (pool, wake time) finds what is due.
/// </summary>
public sealed class SweeperGrain(BrokerIndex index, IOptions<BrokerOptions> options, TimeProvider time, SweepMetrics metrics, ILogger<SweeperGrain> logger)
    : Grain, ISweeperGrain, IRemindable
{
    private const string Reminder = "sweep";

    /// <summary>Rows read per query, and wake calls in flight at once.</summary>
    private const int Page = 500;
    private const int Parallel = 32;

    private bool _started;

    private string Pool => this.GetPrimaryKeyString();

    public async Task Start()
    {
        if (!_started)
        {
            var period = options.Value.LeaseCheckPeriod;
            await this.RegisterOrUpdateReminder(Reminder, period, period);
            _started = true;
        }
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == Reminder)
        {
            _started = true;
            await Sweep();
        }
    }

    public async Task<SweepReport> Sweep()
    {
        var now = time.GetUtcNow();
        var claims = await WakeAll(await index.ListDueClaimsAsync(Pool, now, Page, CancellationToken.None),
            key => GrainFactory.GetGrain<IClaimGrain>(key).Wake(), "claim");
        var sandboxes = await WakeAll(await index.ListDueSandboxesAsync(Pool, now, Page, CancellationToken.None),
            id => GrainFactory.GetGrain<ISandboxGrain>(id).Wake(), "sandbox");
        var report = new SweepReport(claims.Woken, sandboxes.Woken, claims.Errors + sandboxes.Errors);
        metrics.Record(Pool, report, claims.Errors, sandboxes.Errors);
        if (report.ClaimsWoken + report.SandboxesWoken + report.Errors > 0)
        {
            logger.LogInformation("Sweep of pool {Pool}: woke {Claims} claims and {Sandboxes} sandboxes ({Errors} failed)",
                Pool, report.ClaimsWoken, report.SandboxesWoken, report.Errors);
        }
        return report;
    }

    /// <summary>Wakes each, at most <see cref="Parallel"/> at a time; a failure is logged and found again by the next sweep.</summary>
    private async Task<(int Woken, int Errors)> WakeAll(IReadOnlyList<string> keys, Func<string, Task> wake, string what)
    {
        int woken = 0, errors = 0;
        foreach (var chunk in keys.Chunk(Parallel))
        {
            await Task.WhenAll(chunk.Select(async key =>
            {
                try
                {
                    await wake(key);
                    woken++;
                }
                catch (Exception e)
                {
                    errors++;
                    logger.LogWarning("Sweep of pool {Pool} could not wake {What} {Key}: {Error}", Pool, what, key, e.Message);
                }
            }));
        }
        return (woken, errors);
    }
}
