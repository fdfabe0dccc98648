using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

/// <summary>What the open-loop driver records of each operation.</summary>
public sealed class OpenLoopDriverTests
{
    [Fact]
    public async Task Failed_operations_get_a_service_time_histogram_of_their_own()
    {
        // A refusal's answer time is its own figure: under overload the broker must refuse at once, and its successes'
        // latency says nothing about that.
        var pace = new PaceSpec(Rate: 400, Duration: TimeSpan.FromMilliseconds(250), Warmup: TimeSpan.Zero, MaxInFlight: 64,
            DrainTimeout: TimeSpan.FromSeconds(10));
        var rec = await new OpenLoopDriver(TimeProvider.System).RunAsync(pace,
            (seq, _) => ValueTask.FromResult(seq % 4 == 0 ? OpResult.Fail("acquire", "http_503_OVERLOADED") : OpResult.Ok("acquire", "warm")),
            progress: null, onWindowStart: null, onWindowEnd: null, CancellationToken.None);

        Assert.Equal(100, rec.Completed);
        Assert.Equal(25, rec.Errors["acquire:http_503_OVERLOADED"]);
        Assert.Equal(25, rec.ErrorService.Count);
        Assert.Equal(100, rec.Service.Count); // every operation's service time, as before
    }
}
