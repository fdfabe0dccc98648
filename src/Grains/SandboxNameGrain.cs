namespace SandboxBroker.Grains;

[GenerateSerializer]
public sealed class SandboxNameState
{
    [Id(0)] public string? Holder { get; set; }
}

/// <summary>A name a claim asked for (e.g. claude-issue-42): one holder at a time, by single activation.</summary>
public sealed class SandboxNameGrain(
    [PersistentState("sandbox-name", StorageNames.Broker)] IPersistentState<SandboxNameState> state) : Grain, ISandboxNameGrain
{
    public async Task Reserve(string holder)
    {
        if (state.State.Holder == holder)
        {
            return;
        }
        if (state.State.Holder is { } other)
        {
            throw new BrokerException(ErrorCodes.Conflict,
                $"sandbox name '{this.GetPrimaryKeyString()}' is in use by claim '{other}'") { Field = "name" };
        }
        state.State.Holder = holder;
        await state.WriteOrReloadAsync(this);
    }

    public async Task Free(string holder)
    {
        if (state.State.Holder == holder)
        {
            await state.ClearStateAsync();
            DeactivateOnIdle();
        }
    }
}
