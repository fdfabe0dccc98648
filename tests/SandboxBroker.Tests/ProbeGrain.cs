using Orleans.Runtime;
using SandboxBroker.Grains;

namespace SandboxBroker.Tests;

/// <summary>A test-only grain: persisted state and a reminder, to prove the Postgres providers across silos.</summary>
[Alias("SandboxBroker.Tests.IProbeGrain")]
public interface IProbeGrain : IGrainWithStringKey
{
    [Alias("Write")] Task<string> Write(string value);
    [Alias("Read")] Task<(string? Value, string Silo)> Read();
    [Alias("StartReminder")] Task StartReminder();
    [Alias("Fired")] Task<List<string>> Fired();
    [Alias("FailWithDatabaseError")] Task FailWithDatabaseError();
    [Alias("FailWithPostgresError")] Task FailWithPostgresError(string sqlState);
}

[GenerateSerializer]
public sealed class ProbeState
{
    [Id(0)] public string? Value { get; set; }
    [Id(1)] public List<string> FiredOn { get; set; } = [];
}

public sealed class ProbeGrain(
    [PersistentState("probe", StorageNames.Broker)] IPersistentState<ProbeState> state,
    ILocalSiloDetails silo) : Grain, IProbeGrain, IRemindable
{
    public async Task<string> Write(string value)
    {
        state.State.Value = value;
        await state.WriteStateAsync();
        return silo.SiloAddress.ToString();
    }

    public Task<(string? Value, string Silo)> Read() => Task.FromResult((state.State.Value, silo.SiloAddress.ToString()));

    public Task StartReminder() => this.RegisterOrUpdateReminder("probe", TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(1));

    public Task<List<string>> Fired() => Task.FromResult(state.State.FiredOn);

    /// <summary>Fails as a grain does when Postgres is restarting.</summary>
    public Task FailWithDatabaseError() => throw new Npgsql.NpgsqlException("simulated: the database went away");

    /// <summary>Fails as a grain does when the server answers an error (57P01: Postgres restarting under the grain's command).</summary>
    public Task FailWithPostgresError(string sqlState) =>
        throw new Npgsql.PostgresException("simulated: the server refused the command", "FATAL", "FATAL", sqlState);

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        state.State.FiredOn.Add(silo.SiloAddress.ToString());
        await state.WriteStateAsync();
    }
}
