namespace SandboxBroker;

/// <summary>
/// The audit log's retention: one grain for the cluster (key "all"), driven by one reminder, so old rows are deleted by
/// exactly one silo at a time wherever it lives. Deleting what is past retention twice is harmless.
/// </summary>
[Alias("SandboxBroker.IAuditRetentionGrain")]
public interface IAuditRetentionGrain : IGrainWithStringKey
{
    public const string Key = "all";

    /// <summary>Makes sure the reminder is registered (the silo calls it at start). Idempotent.</summary>
    [Alias("Start")]
    Task Start();

    /// <summary>Deletes the audit rows older than the retention now; answers how many.</summary>
    [Alias("Prune")]
    Task<long> Prune();
}
