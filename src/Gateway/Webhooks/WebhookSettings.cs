namespace SandboxBroker.Gateway.Webhooks;

/// <summary>
/// The GitHub webhook ("Webhooks:GitHub" section). Nothing is accepted until a secret is set and repositories are listed:
/// an empty <see cref="Repositories"/> accepts none (every delivery is recorded as ignored), so a forgotten setting never
/// gives sandboxes to every repository that knows the secret.
/// </summary>
public sealed class WebhookSettings
{
    public const string Section = "Webhooks:GitHub";

    /// <summary>BROKER_GITHUB_WEBHOOK_SECRET arrives under this key through the BROKER_ environment prefix.</summary>
    public const string SecretEnvironmentKey = "GITHUB_WEBHOOK_SECRET";

    /// <summary>Secrets a signature may match; list the new one beside the old while rotating at GitHub.</summary>
    public string[] Secrets { get; set; } = [];

    /// <summary>Repositories ("owner/repo", case-insensitive) whose events act; "*" accepts every repository.</summary>
    public string[] Repositories { get; set; } = [];

    /// <summary>The tenant the claims belong to.</summary>
    public string Tenant { get; set; } = "github";

    /// <summary>The pool sandboxes come from; null is the default pool.</summary>
    public string? Pool { get; set; }

    /// <summary>The sandbox name: {number}, {repo} and {key} are replaced. With several repositories, include {repo}: names are unique.</summary>
    public string NameTemplate { get; set; } = "claude-issue-{number}";

    /// <summary>When set, only issues carrying this label get a sandbox: adding it acquires, removing it releases.</summary>
    public string? TriggerLabel { get; set; }

    /// <summary>The lease TTL; null is the pool's default.</summary>
    public TimeSpan? Ttl { get; set; }

    /// <summary>The lease's idle timeout (comments count as activity); null is the pool's default.</summary>
    public TimeSpan? IdleTimeout { get; set; }

    /// <summary>False: this gateway records deliveries but never processes them (another gateway does).</summary>
    public bool ProcessDeliveries { get; set; } = true;

    /// <summary>How often the processor looks for waiting deliveries besides being woken by a new one.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a processor holds a delivery before another may take it (a crashed processor's deliveries come back after this).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Deliveries taken at once, and processed concurrently (deliveries of one issue are serialized by its grain).</summary>
    public int BatchSize { get; set; } = 32;

    public int MaxParallel { get; set; } = 8;

    /// <summary>Attempts before a delivery is marked failed; between them the wait doubles from <see cref="RetryDelay"/>.</summary>
    public int MaxAttempts { get; set; } = 5;

    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Finished deliveries are deleted this long after they were received; never less than <see cref="MinRetention"/>.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    public TimeSpan CleanupInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>GitHub lets a delivery be redelivered for 3 days: its id must be remembered at least that long.</summary>
    public static readonly TimeSpan MinRetention = TimeSpan.FromDays(3);

    /// <summary>
    /// GitHub caps payloads at 25 MB, but issue and comment events are a few KB (a comment body is at most 65,536
    /// characters): 1 MB keeps every event this endpoint acts on and bounds what an unsigned request can make it read.
    /// </summary>
    public const long MaxPayloadBytes = 1024 * 1024;

    public TimeSpan EffectiveRetention => Retention < MinRetention ? MinRetention : Retention;

    public bool AcceptsRepository(string? fullName) =>
        fullName is not null && Repositories.Any(r => r.Trim() == "*" || string.Equals(r.Trim(), fullName, StringComparison.OrdinalIgnoreCase));

    public static WebhookSettings Bind(IConfiguration configuration)
    {
        var settings = configuration.GetSection(Section).Get<WebhookSettings>() ?? new WebhookSettings();
        var secrets = settings.Secrets.ToList();
        if (configuration[SecretEnvironmentKey] is { Length: > 0 } fromEnvironment)
        {
            secrets.Add(fromEnvironment);
        }
        settings.Secrets = secrets.Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
        settings.Repositories = settings.Repositories.Where(r => !string.IsNullOrWhiteSpace(r)).ToArray();
        if (string.IsNullOrWhiteSpace(settings.TriggerLabel))
        {
            settings.TriggerLabel = null;
        }
        if (settings.BatchSize < 1 || settings.MaxParallel < 1 || settings.MaxAttempts < 1 || settings.PollInterval <= TimeSpan.Zero ||
            settings.LeaseDuration <= TimeSpan.Zero)
        {
            throw new Storage.StartupException($"{Section}: BatchSize, MaxParallel and MaxAttempts must be at least 1, PollInterval and LeaseDuration positive");
        }
        if (!TenantName.IsValid(settings.Tenant))
        {
            throw new Storage.StartupException($"{Section}: Tenant '{settings.Tenant}' is not a tenant name ({TenantName.Rule})");
        }
        return settings;
    }
}
