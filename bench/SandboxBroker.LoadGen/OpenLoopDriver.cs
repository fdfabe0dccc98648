using System.Collections.Concurrent;
using System.Diagnostics;

namespace SandboxBroker.LoadGen;

/// <summary>How a run is paced: <see cref="Rate"/> operations a second, scheduled from the start time regardless of
/// how fast earlier ones complete (open loop). The first <see cref="Warmup"/> is run but not recorded; its first
/// <see cref="Ramp"/> (at most the warm-up) climbs linearly from nothing to the full rate.</summary>
/// <remarks>
/// The ramp is there because a warm-up at the full rate from its first millisecond is itself an overload: the code of a
/// scenario's path is still unoptimized (tier-0 JIT), so a server whose warm capacity is close to the rate falls behind
/// for a few seconds. On two cores shared with the generator it may then never catch up, as the generator's own cost per
/// operation grows with its backlog (measured on repeats@10,000/s: 66 µs per operation at steady state, 106 with 4,096
/// outstanding), and the window measures that backlog instead of the server. A ramp is how a load test reaches steady
/// state; the window itself is at the full rate throughout.
/// </remarks>
public sealed record PaceSpec(double Rate, TimeSpan Duration, TimeSpan Warmup, int MaxInFlight, TimeSpan DrainTimeout, TimeSpan Ramp = default)
{
    private double RampSeconds => Math.Clamp(Ramp.TotalSeconds, 0, Warmup.TotalSeconds);

    /// <summary>The warm-up's operations: it still ends <see cref="Warmup"/> after the start.</summary>
    public long WarmupOps => (long)Math.Round(Rate * (Warmup.TotalSeconds - RampSeconds / 2));

    public long MeasuredOps => (long)Math.Round(Rate * Duration.TotalSeconds);
    public long TotalOps => WarmupOps + MeasuredOps;

    /// <summary>When operation <paramref name="seq"/> is due, in seconds after the start: i/rate after the ramp, whose
    /// rate·ramp/2 operations are spread so that the rate grows linearly.</summary>
    public double DueSeconds(long seq)
    {
        var ramp = RampSeconds;
        var rampOps = Rate * ramp / 2;
        return seq < rampOps ? Math.Sqrt(2 * ramp * seq / Rate) : ramp + (seq - rampOps) / Rate;
    }
}

/// <summary>What the driver measured for the recorded (post-warmup) operations.</summary>
public sealed class RunRecording
{
    public LatencyHistogram Latency { get; } = new();
    public LatencyHistogram Service { get; } = new();
    /// <summary>Service time of the failed operations alone: how soon a refusal was answered.</summary>
    public LatencyHistogram ErrorService { get; } = new();
    public ConcurrentDictionary<string, LatencyHistogram> ByOp { get; } = new();
    public ConcurrentDictionary<string, long> Errors { get; } = new();
    public ConcurrentDictionary<string, long> Outcomes { get; } = new();
    public long Scheduled;
    public long Completed;
    public long Ok;
    public long NotCompleted;
    public long MaxInFlight;
    public long MaxDispatchLagMicros;
    public double MeasuredSeconds;
    public long WarmupOk;
    public long WarmupErrors;
    public long TotalOk => Ok + WarmupOk;
}

/// <summary>
/// Open-loop load: operation i is due at start + i/rate (after the warm-up's ramp, <see cref="PaceSpec.DueSeconds"/>).
/// Latency is measured from that due time, not from when the request actually left, so a stalled server (or a
/// saturated client) shows up in the figures instead of silently lowering the offered load (no coordinated omission).
/// In-flight operations are capped; when the cap is reached the dispatcher waits, and the wait is part of the measured
/// latency.
/// </summary>
public sealed class OpenLoopDriver(TimeProvider time)
{
    /// <summary>Runs <paramref name="operation"/> (given the operation's sequence number) at the spec's pace.</summary>
    /// <param name="onWindowStart">called once when the first recorded operation is due (CPU sampling starts there)</param>
    /// <param name="onWindowEnd">called once when the last operation has been dispatched</param>
    public async Task<RunRecording> RunAsync(
        PaceSpec pace,
        Func<long, CancellationToken, ValueTask<OpResult>> operation,
        Action<string>? progress,
        Action? onWindowStart,
        Action? onWindowEnd,
        CancellationToken ct)
    {
        var rec = new RunRecording();
        var interval = new LatencyHistogram[] { new() };
        var frequency = (double)Stopwatch.Frequency;
        var gate = new SemaphoreSlim(pace.MaxInFlight, pace.MaxInFlight);
        long inFlight = 0;
        long dispatched = 0;
        long lastCompletion = 0;
        using var stopProgress = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var start = time.GetTimestamp() + (long)(0.05 * frequency);   // a short lead, so op 0 is not already late
        long Due(long seq) => start + (long)(pace.DueSeconds(seq) * frequency);
        var windowStart = Due(pace.WarmupOps);

        var progressTask = progress is null ? Task.CompletedTask : Task.Run(async () =>
        {
            var began = time.GetTimestamp();
            try
            {
                while (true)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), time, stopProgress.Token);
                    var slice = Interlocked.Exchange(ref interval[0], new LatencyHistogram());
                    var elapsed = time.GetElapsedTime(began).TotalSeconds;
                    var phase = time.GetTimestamp() < windowStart ? "warmup" : "measure";
                    progress($"{phase} t={elapsed:0}s sent={Interlocked.Read(ref dispatched)}/{pace.TotalOps} " +
                             $"ok={Interlocked.Read(ref rec.Ok)} errors={rec.Errors.Values.Sum()} in-flight={Interlocked.Read(ref inFlight)} " +
                             $"last-1s: n={slice.Count} p50={Ms(slice.Percentile(50))} p99={Ms(slice.Percentile(99))} max={Ms(slice.Max)} ms");
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, CancellationToken.None);

        async Task RunOne(long seq, long due, bool measured)
        {
            var sent = time.GetTimestamp();
            OpResult result;
            try
            {
                result = await operation(seq, ct);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                result = OpResult.Fail("?", "timeout");
            }
            catch (Exception e)
            {
                result = OpResult.Fail("?", "exception_" + e.GetType().Name);
            }
            var done = time.GetTimestamp();
            Interlocked.Decrement(ref inFlight);
            gate.Release();
            if (!measured)
            {
                if (result.IsOk)
                {
                    Interlocked.Increment(ref rec.WarmupOk);
                }
                else
                {
                    Interlocked.Increment(ref rec.WarmupErrors);
                }
                return;
            }
            var latency = (long)((done - due) * 1_000_000.0 / frequency);
            var service = (long)((done - sent) * 1_000_000.0 / frequency);
            rec.Latency.Record(latency);
            rec.Service.Record(service);
            Volatile.Read(ref interval[0]).Record(latency);
            rec.ByOp.GetOrAdd(result.Op, _ => new LatencyHistogram()).Record(latency);
            Interlocked.Increment(ref rec.Completed);
            if (result.IsOk)
            {
                Interlocked.Increment(ref rec.Ok);
                rec.Outcomes.AddOrUpdate($"{result.Op}:{result.Outcome ?? "ok"}", 1, (_, n) => n + 1);
            }
            else
            {
                rec.Errors.AddOrUpdate($"{result.Op}:{result.Error}", 1, (_, n) => n + 1);
                rec.ErrorService.Record(service);
            }
            long seen;
            while (done > (seen = Interlocked.Read(ref lastCompletion)) && Interlocked.CompareExchange(ref lastCompletion, done, seen) != seen)
            {
            }
        }

        // A dedicated thread keeps the schedule: it sleeps until the next op is due (sub-millisecond sleeps through
        // usleep; the thread pool's timers are ~1 ms coarse and late under load), then hands the op to the thread pool.
        var dispatched_ = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dispatcher = new Thread(() =>
        {
            try
            {
                var windowStarted = false;
                var batch = new List<(long Seq, long Due, bool Measured)>();
                long seq = 0;
                while (seq < pace.TotalOps && !ct.IsCancellationRequested)
                {
                    var due = Due(seq);
                    var now = time.GetTimestamp();
                    if (now < due)
                    {
                        var waitMicros = (due - now) * 1_000_000.0 / frequency;
                        if (waitMicros > 2_000)
                        {
                            Thread.Sleep(1);
                        }
                        else
                        {
                            // At least 200 µs: ops due meanwhile go out together in one thread-pool item, which costs
                            // less CPU than waking a worker per op. Their latency still counts from their own due time.
                            Sleeper.Sleep((uint)Math.Max(200, waitMicros));
                        }
                        continue;
                    }
                    batch.Clear();
                    while (seq < pace.TotalOps && (due = Due(seq)) <= now && batch.Count < 256)
                    {
                        var measured = seq >= pace.WarmupOps;
                        if (measured && !windowStarted)
                        {
                            windowStarted = true;
                            onWindowStart?.Invoke();
                        }
                        gate.Wait(ct);
                        var lag = (long)((time.GetTimestamp() - due) * 1_000_000.0 / frequency);
                        if (measured)
                        {
                            Interlocked.Increment(ref rec.Scheduled);
                            if (lag > rec.MaxDispatchLagMicros)
                            {
                                rec.MaxDispatchLagMicros = lag;
                            }
                        }
                        Interlocked.Increment(ref dispatched);
                        var current = Interlocked.Increment(ref inFlight);
                        if (current > rec.MaxInFlight)
                        {
                            rec.MaxInFlight = current;
                        }
                        batch.Add((seq, due, measured));
                        seq++;
                    }
                    var items = batch.ToArray();
                    ThreadPool.UnsafeQueueUserWorkItem(_ =>
                    {
                        foreach (var (s, d, m) in items)
                        {
                            _ = RunOne(s, d, m);
                        }
                    }, null);
                }
                dispatched_.TrySetResult();
            }
            catch (OperationCanceledException e)
            {
                dispatched_.TrySetCanceled(e.CancellationToken);
            }
            catch (Exception e)
            {
                dispatched_.TrySetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "open-loop dispatcher",
            Priority = ThreadPriority.AboveNormal,
        };
        dispatcher.Start();
        await dispatched_.Task;
        onWindowEnd?.Invoke();
        var scheduleEnd = Due(pace.TotalOps);

        var drainStarted = time.GetTimestamp();
        while (Interlocked.Read(ref inFlight) > 0 && time.GetElapsedTime(drainStarted) < pace.DrainTimeout)
        {
            await Task.Delay(5, CancellationToken.None);
        }
        await stopProgress.CancelAsync();
        await progressTask;

        rec.NotCompleted = rec.Scheduled - Interlocked.Read(ref rec.Completed);
        if (rec.NotCompleted > 0)
        {
            rec.Errors.AddOrUpdate("not_completed_within_drain_timeout", rec.NotCompleted, (_, n) => n + rec.NotCompleted);
        }
        var end = Math.Max(Interlocked.Read(ref lastCompletion), scheduleEnd);
        rec.MeasuredSeconds = Math.Max(1e-9, (end - windowStart) / frequency);
        return rec;
    }

    internal static string Ms(long micros) => (micros / 1000.0).ToString("0.0");
}

/// <summary>Sub-millisecond sleeps (Thread.Sleep takes whole milliseconds).</summary>
internal static partial class Sleeper
{
    public static void Sleep(uint micros)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            _ = USleep(micros);
        }
        else
        {
            Thread.Sleep(TimeSpan.FromTicks(micros * 10));
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "usleep")]
    private static partial int USleep(uint micros);
}
