using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using Orleans.TestingHost;
using SandboxBroker.Grains;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// Watches the broker's grain storage for a state object changed while it is being written. The ADO.NET provider
/// serializes the state after its own awaits (opening a connection), off the grain's turn; a reentrant grain that
/// hands it its live state can change it meanwhile, and the write stores something no turn ever saw. The watch
/// records the state as the write is asked for, waits (<see cref="DelaySetting"/>: the window made wide), lets the
/// real Postgres write run, then compares. Enabled by setting <see cref="DelaySetting"/>; off, it adds nothing.
/// </summary>
public sealed class WriteWatch
{
    public const string DelaySetting = "Tests:WriteWatchDelay";

    public ConcurrentQueue<string> ChangedDuringWrite { get; } = new();
    public ConcurrentDictionary<string, int> Writes { get; } = new();

    public sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            if (siloBuilder.Configuration[DelaySetting] is not { Length: > 0 } delaySetting)
            {
                return;
            }
            var delay = TimeSpan.Parse(delaySetting, System.Globalization.CultureInfo.InvariantCulture);
            var services = siloBuilder.Services;
            var registered = services.Last(d => d.ServiceType == typeof(IGrainStorage) && d.IsKeyedService && Equals(d.ServiceKey, StorageNames.Broker));
            var inner = registered.KeyedImplementationFactory!;
            services.Remove(registered);
            services.AddSingleton<WriteWatch>();
            services.AddKeyedSingleton<IGrainStorage>(StorageNames.Broker, (sp, key) =>
                new WatchedStorage((IGrainStorage)inner(sp, key), sp.GetRequiredService<WriteWatch>(), delay));
        }
    }

    private sealed class WatchedStorage(IGrainStorage inner, WriteWatch watch, TimeSpan delay) : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
            inner.ReadStateAsync(stateName, grainId, grainState);

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
            inner.ClearStateAsync(stateName, grainId, grainState);

        public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            var asked = Json(grainState.State);
            watch.Writes.AddOrUpdate(stateName, 1, (_, n) => n + 1);
            await Task.Delay(delay);
            await inner.WriteStateAsync(stateName, grainId, grainState);
            var after = Json(grainState.State);
            if (after != asked)
            {
                watch.ChangedDuringWrite.Enqueue($"{grainId}: asked to write {asked}, the object then held {after}");
            }
        }

        public void Participate(ISiloLifecycle lifecycle) => (inner as ILifecycleParticipant<ISiloLifecycle>)?.Participate(lifecycle);

        private static string Json<T>(T value)
        {
            try
            {
                return JsonSerializer.Serialize(value);
            }
            catch (InvalidOperationException e)
            {
                return $"(could not be read: {e.Message})"; // changed while being read
            }
        }
    }
}
