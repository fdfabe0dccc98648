namespace SandboxBroker.Grains.Options;

/// <summary>Broker-wide settings, bound from the "Broker" configuration section.</summary>
public sealed class BrokerOptions
{
    public const string Section = "Broker";

    /// <summary>Labels every provider sandbox; the reconciler touches only sandboxes with this deployment's label.</summary>
    public string DeploymentId { get; set; } = "sandboxbroker";

    /// <summary>Ended leases kept per claim key (newest first).</summary>
    public int HistoryLimit { get; set; } = 50;

    /// <summary>Ended leases older than this are pruned.</summary>
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How often an active lease's reminder checks for expiry (the durable backstop; calls check too); also how often a claim
    /// sends again a release that did not reach its sandbox.
    /// </summary>
    public TimeSpan LeaseCheckPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A ready sandbox is checked at its provider before a lease (is it still running? a sandbox that waited in the pool
    /// may have been auto-stopped, or vanished) unless this silo saw the provider confirm it running within this long:
    /// created, or checked, moments ago. A burst drains a pool faster than that, so its leases cost no provider call;
    /// a sandbox that waited longer is checked. Zero checks every time. A sandbox that dies inside the window is found
    /// by the reconciler, as one that dies after its lease began.
    /// </summary>
    public TimeSpan LeaseRecheckAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A warm lease and its sandbox's `leased` state are stored in one transaction when the claim and the sandbox are on
    /// the same silo (a joint write, src/Persistence/JointWrites.cs); false stores the lease first and then the sandbox's
    /// state, two commits on the acquire's path, as for a sandbox on another silo or a cold create.
    /// </summary>
    public bool JointLeaseWrites { get; set; } = true;

    /// <summary>Concurrently active leases per owner (tenant/owner).</summary>
    public int OwnerMaxActiveLeases { get; set; } = 5;

    /// <summary>First and longest wait between provider delete attempts.</summary>
    public TimeSpan DeleteRetryMin { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan DeleteRetryMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The durable retry period for deletes and replenishment (reminders).</summary>
    public TimeSpan RetryReminderPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a pool starts the creates that top it up (it also tops up after a return or a reconfiguration).</summary>
    public TimeSpan PoolFlushInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often each provider is reconciled.</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A provider sandbox no record owns is deleted only once it is older than this (it may be mid-create).</summary>
    public TimeSpan ReconcileGrace { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Audit rows older than this are deleted (by <see cref="AuditRetentionGrain"/>).</summary>
    public TimeSpan AuditRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often the audit retention runs (a reminder; at least Orleans' minimum reminder period).</summary>
    public TimeSpan AuditPrunePeriod { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// A lease's touches are audited once per this interval at most (per activation of its claim): a client touching every
    /// few seconds would otherwise append an audit row each time. The lease's last activity is stored on every touch.
    /// </summary>
    public TimeSpan TouchAuditInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Quota defaults for tenants an admin has set no quota for ("Broker:Tenants").</summary>
    public TenantDefaults Tenants { get; set; } = new();

    /// <summary>Pools that exist from the start; "default" always exists.</summary>
    public Dictionary<string, PoolOptions> Pools { get; set; } = new(StringComparer.Ordinal);

    public PoolConfig PoolConfigFor(string name) =>
        Pools.TryGetValue(name, out var pool) ? pool.ToConfig(name)
        : name == DefaultPool ? new PoolOptions().ToConfig(name)
        : throw new KeyNotFoundException(name);

    public IEnumerable<string> ConfiguredPools => Pools.Keys.Append(DefaultPool).Distinct();

    public const string DefaultPool = "default";
}

/// <summary>A pool as configured at start; run-time changes go through the PoolGrain and are persisted.</summary>
public sealed class PoolOptions
{
    public string Provider { get; set; } = "local";
    public string? Template { get; set; }
    public int MinReady { get; set; } = 2;
    public int MaxTotal { get; set; } = 100;
    public TimeSpan DefaultTtl { get; set; } = TimeSpan.FromHours(1);
    public TimeSpan MaxTtl { get; set; } = TimeSpan.FromHours(24);
    public TimeSpan? IdleTimeout { get; set; }
    public OnEmptyPolicy OnEmpty { get; set; } = OnEmptyPolicy.Create;
    public int MaxConcurrentCreates { get; set; } = 4;

    public PoolConfig ToConfig(string name) =>
        new(name, Provider, Template, MinReady, MaxTotal, DefaultTtl, MaxTtl, IdleTimeout, OnEmpty, MaxConcurrentCreates);
}

/// <summary>What a tenant may hold when its quota (set through the admin API) does not say.</summary>
public sealed class TenantDefaults
{
    /// <summary>
    /// The share of each pool's max total one tenant may hold at once (rounded up), so one tenant cannot take a whole pool;
    /// 1 lets a tenant use the whole pool.
    /// </summary>
    public double PoolShare { get; set; } = 0.5;

    /// <summary>Active leases one tenant may hold across pools; 0: no limit beyond the pool shares.</summary>
    public int MaxActiveLeases { get; set; }

    /// <summary>
    /// Tenants the defaults do not apply to, comma-separated: the operators' own tenant (the admin token's), used by
    /// the benchmark and the fault harness. A quota set for such a tenant still applies.
    /// </summary>
    public string Exempt { get; set; } = "admin";

    public bool IsExempt(string tenant) =>
        Exempt.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Contains(tenant, StringComparer.Ordinal);
}
