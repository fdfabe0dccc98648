using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace SandboxBroker.Grains.Providers;

/// <summary>
/// What the registry hands out: the provider, with every call counted and timed in <see cref="ProviderMetrics"/>. It
/// offers the optional capabilities its provider has, and times those calls too.
/// </summary>
public sealed class MeteredSandboxProvider(ISandboxProvider inner, ProviderMetrics metrics)
    : DelegatingSandboxProvider(inner), ISandboxLabelUpdater, ISandboxLeaseTimer, ISandboxStateReader
{
    public override Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken) =>
        Measure("create", () => Inner.CreateAsync(request, cancellationToken));

    public override Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Measure("get", () => Inner.GetAsync(sandboxId, externalId, cancellationToken));

    public override async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // One listing is one call, however many pages it reads; the time is the whole enumeration's.
        var started = Stopwatch.GetTimestamp();
        Exception? error = null;
        await using var pages = Inner.ListAsync(labels, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await pages.MoveNextAsync();
                }
                catch (Exception e)
                {
                    error = e;
                    throw;
                }
                if (!more)
                {
                    break;
                }
                yield return pages.Current;
            }
        }
        finally
        {
            metrics.Call(Name, "list", Stopwatch.GetElapsedTime(started), error);
        }
    }

    public override Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Measure("start", () => Inner.StartAsync(sandboxId, externalId, cancellationToken));

    public override Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Measure("stop", () => Inner.StopAsync(sandboxId, externalId, cancellationToken));

    public override Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Measure("delete", () => Inner.DeleteAsync(sandboxId, externalId, cancellationToken));

    public Task SetLabelsAsync(string sandboxId, string? externalId, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken) =>
        Measure("set_labels", () => Required<ISandboxLabelUpdater>().SetLabelsAsync(sandboxId, externalId, labels, cancellationToken));

    /// <summary>Counted as a "get": it answers the same question for less.</summary>
    public Task<ProviderSandboxState?> GetStateAsync(string sandboxId, string? externalId, CancellationToken cancellationToken) =>
        Measure("get", () => Required<ISandboxStateReader>().GetStateAsync(sandboxId, externalId, cancellationToken));

    public Task<IReadOnlyDictionary<string, string>> HoldUntilAsync(string sandboxId, string? externalId, DateTimeOffset until, CancellationToken cancellationToken) =>
        Measure("hold", () => Required<ISandboxLeaseTimer>().HoldUntilAsync(sandboxId, externalId, until, cancellationToken));

    /// <summary>Offered only when the provider has it: through this wrapper where it meters the calls, as the provider's own
    /// otherwise (a check that calls nobody, such as <see cref="ISandboxTemplateRule"/>).</summary>
    public override T? CapabilityOf<T>() where T : class => Inner.Capability<T>() is { } inner ? this as T ?? inner : null;

    private T Required<T>() where T : class =>
        Inner.Capability<T>() ?? throw new NotSupportedException($"provider '{Name}' has no {typeof(T).Name}");

    private async Task Measure(string operation, Func<Task> call) =>
        await Measure(operation, async () =>
        {
            await call();
            return true;
        });

    private async Task<T> Measure<T>(string operation, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var result = await call();
            metrics.Call(Name, operation, Stopwatch.GetElapsedTime(started), null);
            return result;
        }
        catch (Exception e)
        {
            metrics.Call(Name, operation, Stopwatch.GetElapsedTime(started), e);
            throw;
        }
    }
}
