using System.Diagnostics;
using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

public sealed class CpuSamplerTests
{
    [Fact]
    public void Loads_that_differ_by_less_than_a_hundredth_of_a_core_stay_apart()
    {
        var sampler = new CpuSampler(new Dictionary<string, int>(), TimeProvider.System);
        var start = new CpuSampler.Sample(0, new Dictionary<string, long> { ["gateway"] = 0, ["postgres"] = 0 }, 0, 1);
        // 20 s: the gateway used 6.67 s of CPU, Postgres 6.61 s (in USER_HZ ticks).
        var end = new CpuSampler.Sample(20 * Stopwatch.Frequency, new Dictionary<string, long> { ["gateway"] = 667, ["postgres"] = 661 }, 0, 1);
        var split = sampler.Between(start, end);
        Assert.Equal(0.3335, split.Cores["gateway"], 4);
        Assert.Equal(0.3305, split.Cores["postgres"], 4);
    }
}
