namespace SandboxBroker.LoadGen;

/// <summary>
/// CPU time per process group from /proc (Linux): the generator itself, processes named on the command line
/// (e.g. silo=1234, gateway=1235) and every process called "postgres" (the server and its backends). Gives the
/// split of the machine's cores between the parts of the benchmark.
/// </summary>
public sealed class CpuSampler(IReadOnlyDictionary<string, int> named, TimeProvider time)
{
    private const double TicksPerSecond = 100.0;   // USER_HZ on Linux

    // The CPU per operation is derived from these: at two decimals (0.01 core = 25 µs per operation at 400/s) two groups
    // came out with the same µs per operation whenever their loads rounded alike.
    private const int Digits = 4;

    public sealed record Sample(long Timestamp, IReadOnlyDictionary<string, long> Ticks, long MachineBusy, long MachineTotal);

    public Sample Take()
    {
        var ticks = new Dictionary<string, long>
        {
            ["loadgen"] = ProcessTicks(Environment.ProcessId) ?? 0,
        };
        foreach (var (name, pid) in named)
        {
            ticks[name] = (ticks.GetValueOrDefault(name)) + (ProcessTicks(pid) ?? 0);
        }
        long postgres = 0;
        if (Directory.Exists("/proc"))
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), out var pid) && Comm(pid) == "postgres")
                {
                    postgres += ProcessTicks(pid) ?? 0;
                }
            }
        }
        ticks["postgres"] = postgres;
        var (busy, total) = MachineTicks();
        return new Sample(time.GetTimestamp(), ticks, busy, total);
    }

    /// <summary>Cores used by each group between two samples (1.0 = one core busy the whole time).</summary>
    public CpuSplit Between(Sample a, Sample b)
    {
        var seconds = time.GetElapsedTime(a.Timestamp, b.Timestamp).TotalSeconds;
        var cores = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, t) in b.Ticks)
        {
            cores[name] = Math.Round((t - a.Ticks.GetValueOrDefault(name)) / TicksPerSecond / Math.Max(seconds, 1e-9), Digits);
        }
        var machineCores = Environment.ProcessorCount;
        var totalDelta = b.MachineTotal - a.MachineTotal;
        var busy = totalDelta <= 0 ? 0 : (double)(b.MachineBusy - a.MachineBusy) / totalDelta * machineCores;
        cores["machine_busy"] = Math.Round(busy, Digits);
        // Whatever else ran on the machine meanwhile (other users, builds): a noisy neighbour shows up here.
        cores["other"] = Math.Round(Math.Max(0, busy - cores.Where(c => c.Key != "machine_busy").Sum(c => c.Value)), Digits);
        return new CpuSplit(Math.Round(seconds, 1), machineCores, cores);
    }

    private static long? ProcessTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // comm may contain spaces and parentheses: fields start after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state); utime is field 14, stime field 15.
            return long.Parse(fields[11]) + long.Parse(fields[12]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static string? Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static (long Busy, long Total) MachineTicks()
    {
        try
        {
            var line = File.ReadLines("/proc/stat").First();
            var v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
            var total = v.Take(8).Sum();           // user nice system idle iowait irq softirq steal
            var idle = v[3] + v[4];
            return (total - idle, total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return (0, 0);
        }
    }
}

/// <summary>Cores used per process group over a window (1.0 = one core), and the machine's busy cores.</summary>
public sealed record CpuSplit(double WindowSeconds, int MachineCores, IReadOnlyDictionary<string, double> Cores);
