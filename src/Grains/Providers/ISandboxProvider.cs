namespace SandboxBroker.Grains.Providers;

/// <summary>
/// A place sandboxes live (a directory tree, a Postgres database, Daytona, E2B). Only SandboxGrain calls
/// create/start/stop/delete for its sandbox; the reconciler lists. Every call is idempotent:
/// create finds an existing sandbox by the broker id label, delete of a missing sandbox succeeds.
/// </summary>
public interface ISandboxProvider
{
    string Name { get; }

    Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken);

    /// <summary>The sandbox holding this broker id, or null when the provider has none.</summary>
    Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken);

    /// <summary>Every sandbox whose labels include all of <paramref name="labels"/>, page by page.</summary>
    IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken);

    Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken);

    Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken);

    /// <summary>Deletes the sandbox; succeeds when it is already gone.</summary>
    Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken);
}

/// <summary>
/// Optional: a provider that can tell, without creating anything, whether it can use a pool's template (postgres-schema
/// reads templates from its template directory only). A pool naming one it cannot use is refused when it is set, with
/// the reason, instead of failing every acquire later.
/// </summary>
public interface ISandboxTemplateRule
{
    /// <summary>Null when the template can be used; otherwise why not.</summary>
    string? ProblemWith(string template);
}

/// <summary>
/// Optional: a provider whose sandbox labels can be changed after create. SandboxGrain uses it at lease time to put
/// the claim-key label on a warm sandbox (cold ones carry it from create).
/// </summary>
public interface ISandboxLabelUpdater
{
    /// <summary>Adds or replaces these labels on the sandbox, keeping the others.</summary>
    Task SetLabelsAsync(string sandboxId, string? externalId, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken);
}

/// <summary>
/// Optional: a provider that can tell a sandbox's state for less than <see cref="ISandboxProvider.GetAsync"/> costs (the
/// local provider reads one file instead of two). SandboxGrain uses it for the check before a lease, which needs nothing else.
/// </summary>
public interface ISandboxStateReader
{
    /// <summary>The state of the sandbox holding this broker id, or null when the provider has none.</summary>
    Task<ProviderSandboxState?> GetStateAsync(string sandboxId, string? externalId, CancellationToken cancellationToken);
}

/// <summary>
/// Optional: a provider whose own timer stops a sandbox (E2B's timeout kills or pauses it). The broker tells it how long a
/// lease needs the sandbox: when the lease begins (until its deadline) and again on every reconcile while the lease lives,
/// so a lease longer than the provider's maximum timeout is carried across it in steps. Once the lease ends nothing extends
/// the timer, and the provider's own timeout takes over again if the broker's delete never arrives.
/// </summary>
public interface ISandboxLeaseTimer
{
    /// <summary>
    /// Keeps the sandbox running until at least <paramref name="until"/>, as far as the provider allows (capped at its
    /// maximum timeout), resuming it if it was paused. Answers the connection details for the lease (access tokens
    /// included), or throws a non-transient <see cref="ProviderException"/> when the sandbox no longer exists.
    /// </summary>
    Task<IReadOnlyDictionary<string, string>> HoldUntilAsync(string sandboxId, string? externalId, DateTimeOffset until, CancellationToken cancellationToken);
}

public sealed record ProviderCreateRequest(
    string SandboxId,
    string Name,
    string? Template,
    IReadOnlyDictionary<string, string> Labels);

public enum ProviderSandboxState
{
    Creating,
    Running,
    Stopped,
    Failed,
}

public sealed record ProviderSandbox(
    string SandboxId,
    string ExternalId,
    string Name,
    ProviderSandboxState State,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Connection,
    DateTimeOffset? CreatedAt = null);

/// <summary>A provider call failed. Transient errors are retried by the caller; others mark the sandbox failed.</summary>
public sealed class ProviderException(string provider, string message, bool transient, Exception? inner = null)
    : Exception($"{provider}: {message}", inner)
{
    public string Provider { get; } = provider;

    public bool Transient { get; } = transient;
}

/// <summary>
/// Finds providers by name (the pool's Provider field). Each comes metered (<see cref="MeteredSandboxProvider"/>); ask
/// it for optional capabilities with <see cref="SandboxProviderCapabilities.Capability{T}"/>, not a type test.
/// </summary>
public sealed class SandboxProviderRegistry(IEnumerable<ISandboxProvider> providers, ProviderMetrics metrics)
{
    private readonly Dictionary<string, ISandboxProvider> _byName =
        providers.ToDictionary(p => p.Name, ISandboxProvider (p) => new MeteredSandboxProvider(p, metrics), StringComparer.OrdinalIgnoreCase);

    public IReadOnlyCollection<string> Names => _byName.Keys;

    public ISandboxProvider Get(string name) =>
        _byName.TryGetValue(name, out var provider)
            ? provider
            : throw new BrokerException(ErrorCodes.InvalidArgument,
                $"unknown provider '{name}'; configured providers: {string.Join(", ", _byName.Keys.Order())}") { Field = "provider" };

    public bool Contains(string name) => _byName.ContainsKey(name);
}
