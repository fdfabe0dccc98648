using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// Makes chosen grain calls fail the way a call to a silo that is going away fails: before reaching the grain, or after
/// it ran with the answer lost. Named "Interface.Method" (e.g. "ISandboxGrain.Release"); each armed fault fires once.
/// Every test silo has it, unarmed (a dictionary look-up per call).
/// </summary>
public sealed class CallFaults : IIncomingGrainCallFilter
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<bool>> _armed = new(StringComparer.Ordinal);

    /// <summary>The next call of <paramref name="method"/> fails; with <paramref name="afterRunning"/> it runs first.</summary>
    public void FailNext(string method, bool afterRunning = false)
    {
        lock (_lock)
        {
            if (!_armed.TryGetValue(method, out var queue))
            {
                _armed[method] = queue = new Queue<bool>();
            }
            queue.Enqueue(afterRunning);
        }
    }

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        var method = $"{context.InterfaceMethod?.DeclaringType?.Name}.{context.InterfaceMethod?.Name}";
        bool? afterRunning = null;
        lock (_lock)
        {
            if (_armed.TryGetValue(method, out var queue) && queue.TryDequeue(out var fault))
            {
                afterRunning = fault;
            }
        }
        if (afterRunning is null)
        {
            await context.Invoke();
            return;
        }
        if (afterRunning.Value)
        {
            await context.Invoke();
        }
        throw new TimeoutException($"injected fault: {method} {(afterRunning.Value ? "ran, but its answer was lost" : "did not reach the grain")}");
    }

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.Services.AddSingleton<CallFaults>();
            siloBuilder.Services.AddSingleton<IIncomingGrainCallFilter>(sp => sp.GetRequiredService<CallFaults>());
        }
    }
}
