using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

/// <summary>compare runs two baselines beside the broker: which ones and in what order, and that every ratio says which
/// baseline it is against (the minimal one keeps the name "baseline", so its figures line up with earlier rounds).</summary>
public sealed class BaselineReportTests
{
    [Fact]
    public void Baselines_parse_in_the_given_order_without_repeats()
    {
        Assert.Equal([BaselineVariant.Minimal, BaselineVariant.Fair], BaselineVariants.Parse("minimal,fair"));
        Assert.Equal([BaselineVariant.Fair, BaselineVariant.Minimal], BaselineVariants.Parse(" fair , minimal,fair"));
        Assert.Equal([BaselineVariant.Fair], BaselineVariants.Parse("fair"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(",")]
    [InlineData("minimal,broker")]
    public void Unknown_or_no_baselines_are_refused(string text) =>
        Assert.Throws<FormatException>(() => BaselineVariants.Parse(text));

    [Fact]
    public void The_minimal_baseline_keeps_its_name()
    {
        Assert.Equal("baseline", BaselineVariants.Target(BaselineVariant.Minimal));
        Assert.Equal("baseline-fair", BaselineVariants.Target(BaselineVariant.Fair));
    }

    [Fact]
    public void The_broker_is_set_against_each_baseline_by_name()
    {
        var broker = Result("broker", throughput: 100, p50: 40, xact: 9.2);
        var minimal = Result("baseline", throughput: 100, p50: 2, xact: 2.0);
        var fair = Result("baseline-fair", throughput: 100, p50: 4, xact: 2.0);

        var ratios = new[] { Ratio.Of(broker, minimal), Ratio.Of(broker, fair) };

        Assert.Equal(["baseline", "baseline-fair"], ratios.Select(r => r.Baseline));
        Assert.Equal([20.0, 10.0], ratios.Select(r => r.P50));
        Assert.Equal([4.6, 4.6], ratios.Select(r => r.TransactionsPerOp));
        var table = Tables.Ratios(ratios).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, table.Length); // header, rule, one row per baseline
        Assert.Contains("| baseline      |", table[2], StringComparison.Ordinal);
        Assert.Contains("| baseline-fair |", table[3], StringComparison.Ordinal);
    }

    private static ScenarioResult Result(string target, double throughput, double p50, double xact)
    {
        var latency = new LatencySummary(1000, p50, p50, p50, p50, p50, p50, p50);
        var pg = new PostgresDelta("db", 10, 1000, 0, 0, 0, 0, 0, 0, 0, xact, 2, null, new Dictionary<string, TableDelta>(), xact);
        return new ScenarioResult(target, "warm", "warm", 1000, null, 100, 10, 2, 0, DateTimeOffset.UnixEpoch, "bench:", 1000, 1000, 1000, 0,
            new Dictionary<string, long>(), new Dictionary<string, long>(), throughput, latency, latency,
            new Dictionary<string, LatencySummary>(), 1, 0, 0, 0, new PoolFill(0, 0, 0, true), new Dictionary<string, long>(), pg, null, null, null);
    }
}
