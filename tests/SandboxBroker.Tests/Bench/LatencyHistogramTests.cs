using SandboxBroker.LoadGen;

namespace SandboxBroker.Tests.Bench;

/// <summary>The load generator's latency recorder: percentiles within its stated precision (1/128), exact extremes.</summary>
public sealed class LatencyHistogramTests
{
    [Fact]
    public void Empty_histogram_reports_zero()
    {
        var h = new LatencyHistogram();
        Assert.Equal(0, h.Count);
        Assert.Equal(0, h.Percentile(99));
        Assert.Equal(0, h.Max);
        Assert.Equal(0, h.Min);
    }

    [Fact]
    public void Small_values_are_exact()
    {
        var h = new LatencyHistogram();
        for (var v = 1; v <= 200; v++)
        {
            h.Record(v);
        }
        Assert.Equal(100, h.Percentile(50));
        Assert.Equal(198, h.Percentile(99));
        Assert.Equal(200, h.Percentile(100));
        Assert.Equal(1, h.Percentile(0));
        Assert.Equal(100.5, h.Mean, 6);
    }

    [Theory]
    [InlineData(50.0)]
    [InlineData(90.0)]
    [InlineData(99.0)]
    [InlineData(99.9)]
    public void Percentiles_of_a_uniform_spread_are_within_the_bucket_precision(double percent)
    {
        var h = new LatencyHistogram();
        const int n = 1_000_000;
        for (var v = 1; v <= n; v++)
        {
            h.Record(v);                      // 1 µs .. 1 s
        }
        var exact = (long)Math.Ceiling(percent / 100 * n);
        var reported = h.Percentile(percent);
        Assert.InRange(reported, exact, exact + exact / 128 + 1);   // never below the true value, at most 1/128 above
        Assert.Equal(n, h.Max);
        Assert.Equal(1, h.Min);
        Assert.Equal(n, h.Count);
    }

    [Fact]
    public void A_slow_tail_is_not_hidden()
    {
        var h = new LatencyHistogram();
        for (var i = 0; i < 990; i++)
        {
            h.Record(1_000);                  // 1 ms
        }
        for (var i = 0; i < 10; i++)
        {
            h.Record(2_000_000);              // 2 s
        }
        Assert.InRange(h.Percentile(99), 1_000, 1_008);
        Assert.InRange(h.Percentile(99.5), 1_984_000, 2_000_000);
        Assert.Equal(2_000_000, h.Max);
    }

    [Fact]
    public void Bucket_bounds_cover_every_value_once()
    {
        for (long v = 0; v < 100_000; v += 7)
        {
            var i = LatencyHistogram.IndexOf(v);
            Assert.InRange(v, LatencyHistogram.LowerBound(i), LatencyHistogram.UpperBound(i));
        }
        Assert.Equal(LatencyHistogram.UpperBound(300) + 1, LatencyHistogram.LowerBound(301));
    }

    [Fact]
    public void Adding_histograms_equals_recording_into_one()
    {
        var a = new LatencyHistogram();
        var b = new LatencyHistogram();
        var all = new LatencyHistogram();
        for (var v = 0; v < 5_000; v++)
        {
            (v % 2 == 0 ? a : b).Record(v * 13);
            all.Record(v * 13);
        }
        a.Add(b);
        foreach (var p in new[] { 1.0, 50, 95, 99, 100 })
        {
            Assert.Equal(all.Percentile(p), a.Percentile(p));
        }
        Assert.Equal(all.Count, a.Count);
        Assert.Equal(all.Min, a.Min);
        Assert.Equal(all.Mean, a.Mean, 6);
    }

    [Fact]
    public void Recording_from_many_threads_loses_nothing()
    {
        var h = new LatencyHistogram();
        Parallel.For(0, 8, t =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                h.Record(i);
            }
        });
        Assert.Equal(80_000, h.Count);
        Assert.Equal(9_999, h.Max);
    }
}
