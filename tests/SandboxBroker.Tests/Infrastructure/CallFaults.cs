using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// Makes chosen grain calls fail the way a call to a silo that is going away fails: before reaching the grain, or after
/// it ran with the answer lost. Named "Interface.Method" (e.g. "ISandboxGrain.Release"); each armed fault fires once.
/// Calls can also be held on their way out (<see cref="Delay"/>): a message in flight for that long.
/// Every test silo has it, unarmed (a dictionary look-up per call).
/// </summary>
public sealed class CallFaults : IIncomingGrainCallFilter, IOutgoingGrainCallFilter
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<bool>> _armed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TimeSpan> _delays = new(StringComparer.Ordinal);

    /// <summary>Every call of <paramref name="method"/> from a grain of this silo waits this long before it is sent (zero: no longer).</summary>
    public void Delay(string method, TimeSpan by)
    {
        lock (_lock)
        {
            _delays[method] = by;
        }
    }

    async Task IOutgoingGrainCallFilter.Invoke(IOutgoingGrainCallContext context)
    {
        TimeSpan delay;
        lock (_lock)
        {
            delay = _delays.GetValueOrDefault(Name(context.InterfaceMethod));
        }
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay);
        }
        await context.Invoke();
    }

    private static string Name(System.Reflection.MethodInfo? method) => $"{method?.DeclaringType?.Name}.{method?.Name}";

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
        var method = Name(context.InterfaceMethod);
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
            siloBuilder.Services.AddSingleton<IOutgoingGrainCallFilter>(sp => sp.GetRequiredService<CallFaults>());
        }
    }
}
