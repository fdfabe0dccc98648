namespace SandboxBroker.Tests.Infrastructure;

/// <summary>Waits for a condition that background work (reminders, deletion retries) makes true. Not a timing assertion: the limit is generous.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            if (await condition())
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting until {what}");
            }
            await Task.Delay(200);
        }
    }

    /// <summary>Waits until <paramref name="problem"/> answers null; on time-out the last problem it named is the failure message.</summary>
    public static async Task NoProblemAsync(Func<Task<string?>> problem, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            if (await problem() is not { } last)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting until {what}; still: {last}");
            }
            await Task.Delay(200);
        }
    }

    public static Task TrueAsync(Func<bool> condition, string what, TimeSpan? within = null) =>
        TrueAsync(() => Task.FromResult(condition()), what, within);
}
