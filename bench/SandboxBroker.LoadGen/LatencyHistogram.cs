namespace SandboxBroker.LoadGen;

/// <summary>
/// A small HDR-style latency recorder: values (microseconds) below 256 are counted exactly; above that each power
/// of two is split into 128 linear buckets, so a reported percentile is within 1/128 (0.8%) of the true value.
/// Recording is lock-free and safe from many threads; reading while recording gives a near-consistent view.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 7;
    private const int Sub = 1 << SubBits;          // 128 buckets per power of two
    private const int Exact = 2 * Sub;              // 0..255 are exact
    private const int MaxExponent = 40;             // 2^40 µs ≈ 12.7 days; larger values are clamped
    private const int BucketCount = Exact + (MaxExponent - SubBits) * Sub;

    private readonly long[] _counts = new long[BucketCount];
    private long _count;
    private long _sum;
    private long _min = long.MaxValue;
    private long _max;

    public long Count => Interlocked.Read(ref _count);
    public long Min => Count == 0 ? 0 : Interlocked.Read(ref _min);
    public long Max => Interlocked.Read(ref _max);
    public double Mean => Count == 0 ? 0 : (double)Interlocked.Read(ref _sum) / Count;

    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }
        Interlocked.Increment(ref _counts[IndexOf(micros)]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sum, micros);
        long seen;
        while (micros < (seen = Interlocked.Read(ref _min)) && Interlocked.CompareExchange(ref _min, micros, seen) != seen)
        {
        }
        while (micros > (seen = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, micros, seen) != seen)
        {
        }
    }

    /// <summary>Adds every value recorded in <paramref name="other"/>.</summary>
    public void Add(LatencyHistogram other)
    {
        for (var i = 0; i < BucketCount; i++)
        {
            var c = Interlocked.Read(ref other._counts[i]);
            if (c != 0)
            {
                Interlocked.Add(ref _counts[i], c);
            }
        }
        var count = other.Count;
        if (count == 0)
        {
            return;
        }
        Interlocked.Add(ref _count, count);
        Interlocked.Add(ref _sum, Interlocked.Read(ref other._sum));
        long seen;
        var min = other.Min;
        var max = other.Max;
        while (min < (seen = Interlocked.Read(ref _min)) && Interlocked.CompareExchange(ref _min, min, seen) != seen)
        {
        }
        while (max > (seen = Interlocked.Read(ref _max)) && Interlocked.CompareExchange(ref _max, max, seen) != seen)
        {
        }
    }

    /// <summary>
    /// The smallest recorded-bucket value v such that at least <paramref name="percent"/>% of the values are ≤ v
    /// (the bucket's upper bound, never above the recorded maximum). 0 when nothing was recorded.
    /// </summary>
    public long Percentile(double percent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(percent, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        var total = Count;
        if (total == 0)
        {
            return 0;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(percent / 100.0 * total));
        long seen = 0;
        for (var i = 0; i < BucketCount; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Min(UpperBound(i), Max);
            }
        }
        return Max;
    }

    internal static int IndexOf(long value)
    {
        if (value < Exact)
        {
            return (int)value;
        }
        var exponent = 63 - (int)long.LeadingZeroCount(value);   // floor(log2 value) ≥ 8
        if (exponent >= MaxExponent)
        {
            return BucketCount - 1;
        }
        var shift = exponent - SubBits;                      // value >> shift is in [128, 256)
        return Exact + (shift - 1) * Sub + (int)((value >> shift) - Sub);
    }

    internal static long LowerBound(int index)
    {
        if (index < Exact)
        {
            return index;
        }
        var shift = (index - Exact) / Sub + 1;
        var mantissa = (long)((index - Exact) % Sub + Sub);
        return mantissa << shift;
    }

    internal static long UpperBound(int index) => index < Exact ? index : LowerBound(index + 1) - 1;
}
