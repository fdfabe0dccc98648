using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

/// <summary>Each scenario is judged against the target of its offered rate (issue 15's, issue 7's for repeats).</summary>
public sealed class ScenarioGoalTests
{
    [Theory]
    [InlineData("warm", 100, 100, 50)]
    [InlineData("warm", 400, 400, 50)]
    [InlineData("warm", 1000, 1000, 100)]
    [InlineData("release", 100, 100, 30)]
    [InlineData("repeat", 10000, 10000, 20)]
    public void A_scenario_is_held_to_the_target_of_its_rate(string scenario, double rate, double minThroughput, double maxP99)
    {
        var goal = ScenarioResult.GoalFor(Spec(scenario, rate), throughput: rate, Latency(p99: maxP99), errors: 0);

        Assert.Equal(new Goal(minThroughput, maxP99, Met: true), goal);
        Assert.False(ScenarioResult.GoalFor(Spec(scenario, rate), rate, Latency(p99: maxP99 + 0.1), errors: 0)!.Met);
        Assert.False(ScenarioResult.GoalFor(Spec(scenario, rate), rate, Latency(p99: 1), errors: 1)!.Met);
        Assert.False(ScenarioResult.GoalFor(Spec(scenario, rate), rate * 0.98, Latency(p99: 1), errors: 0)!.Met);
    }

    [Fact]
    public void Overload_has_no_target_of_its_own()
    {
        Assert.Null(ScenarioResult.GoalFor(Spec("warm", 2000), 900, Latency(p99: 10), errors: 0));
    }

    private static ScenarioSpec Spec(string scenario, double rate) =>
        new(scenario, rate, TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(10), 1, MixWeights.Default);

    private static LatencySummary Latency(double p99) => new(1000, 1, 1, 1, p99, p99, p99, 1);
}
