using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

/// <summary>The load generator's schedule: the warm-up climbs to the rate, the measured window is at the full rate.</summary>
public sealed class PaceSpecTests
{
    private static PaceSpec Pace(double rate, double warmup, double ramp, double duration = 20) =>
        new(rate, TimeSpan.FromSeconds(duration), TimeSpan.FromSeconds(warmup), 4096, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(ramp));

    [Fact]
    public void Without_a_ramp_operation_i_is_due_at_i_over_the_rate()
    {
        var pace = Pace(rate: 1000, warmup: 10, ramp: 0);
        Assert.Equal(10_000, pace.WarmupOps);
        Assert.Equal(0.0, pace.DueSeconds(0));
        Assert.Equal(2.5, pace.DueSeconds(2500), 9);
        Assert.Equal(10.0, pace.DueSeconds(pace.WarmupOps), 9);
    }

    [Fact]
    public void The_ramp_climbs_linearly_and_the_window_still_starts_when_the_warmup_ends()
    {
        var pace = Pace(rate: 1000, warmup: 10, ramp: 4);
        // A linear climb: a quarter of the ramp's operations are due by its middle.
        Assert.Equal(2.0, pace.DueSeconds(500), 9);   // 1000 * 2^2 / (2 * 4) = 500 due in the first 2 s
        Assert.Equal(4.0, pace.DueSeconds(2000), 9);  // the ramp's 1000 * 4 / 2 operations
        Assert.Equal(8_000, pace.WarmupOps);           // 2,000 in the ramp and 6 s at the full rate
        Assert.Equal(10.0, pace.DueSeconds(pace.WarmupOps), 9);
        // The measured window: 20,000 operations at 1,000/s.
        Assert.Equal(30.0, pace.DueSeconds(pace.TotalOps), 9);
        Assert.Equal(0.001, pace.DueSeconds(pace.WarmupOps + 1) - pace.DueSeconds(pace.WarmupOps), 9);
    }

    [Fact]
    public void A_ramp_longer_than_the_warmup_is_cut_to_it()
    {
        var pace = Pace(rate: 100, warmup: 2, ramp: 10);
        Assert.Equal(100, pace.WarmupOps);
        Assert.Equal(2.0, pace.DueSeconds(pace.WarmupOps), 9);
        Assert.Equal(0.07, Pace(rate: 100, warmup: 0, ramp: 3).DueSeconds(7), 9);
    }
}
