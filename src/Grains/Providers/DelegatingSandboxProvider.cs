namespace SandboxBroker.Grains.Providers;

/// <summary>
/// A provider that hands every call to another: the base of wrappers that change some calls and keep the rest (the
/// metered provider the registry hands out, test doubles that fail on purpose). A wrapper keeps the inner provider's
/// optional capabilities visible through <see cref="SandboxProviderCapabilities.Capability{T}"/>.
/// </summary>
public abstract class DelegatingSandboxProvider(ISandboxProvider inner) : ISandboxProvider
{
    public ISandboxProvider Inner { get; } = inner;

    public virtual string Name => Inner.Name;

    public virtual Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken) =>
        Inner.CreateAsync(request, cancellationToken);

    public virtual Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Inner.GetAsync(sandboxId, externalId, cancellationToken);

    public virtual IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken) =>
        Inner.ListAsync(labels, cancellationToken);

    public virtual Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Inner.StartAsync(sandboxId, externalId, cancellationToken);

    public virtual Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Inner.StopAsync(sandboxId, externalId, cancellationToken);

    public virtual Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Inner.DeleteAsync(sandboxId, externalId, cancellationToken);

    /// <summary>The optional capability <typeparamref name="T"/>, or null: by default the inner provider's own.</summary>
    public virtual T? CapabilityOf<T>() where T : class => Inner.Capability<T>();
}

/// <summary>How callers ask a provider, wrapped or not, for an optional capability (labels after create, a lease timer).</summary>
public static class SandboxProviderCapabilities
{
    public static T? Capability<T>(this ISandboxProvider provider) where T : class =>
        provider is DelegatingSandboxProvider wrapper ? wrapper.CapabilityOf<T>() : provider as T;
}
