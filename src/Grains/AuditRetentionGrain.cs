using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Options;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// Deletes audit rows older than <see cref="BrokerOptions.AuditRetention"/> every <see cref="BrokerOptions.AuditPrunePeriod"/>.
/// A reminder (not a timer, not a service per silo): one per cluster, and it survives the silo that held it.
/// </summary>
public sealed class AuditRetentionGrain(AuditLog audit, IOptions<BrokerOptions> options, TimeProvider time, ILogger<AuditRetentionGrain> logger)
    : Grain, IAuditRetentionGrain, IRemindable
{
    private const string PruneReminder = "prune";
    private const int Batch = 10_000;
    private const int MaxBatches = 100;

    public async Task Start() =>
        await this.RegisterOrUpdateReminder(PruneReminder, options.Value.AuditPrunePeriod, options.Value.AuditPrunePeriod);

    public async Task<long> Prune()
    {
        var cutoff = time.GetUtcNow() - options.Value.AuditRetention;
        var deleted = await audit.PruneAsync(cutoff, Batch, MaxBatches, CancellationToken.None);
        if (deleted > 0)
        {
            logger.LogInformation("Audit retention deleted {Rows} audit rows from before {Cutoff}", deleted, cutoff);
        }
        return deleted;
    }

    public Task ReceiveReminder(string reminderName, TickStatus status) =>
        reminderName == PruneReminder ? Prune() : Task.CompletedTask;
}
