using System.Diagnostics;

namespace SandboxBroker.Silo.Metrics;

/// <summary>
/// Times every <see cref="IClaimGrain.Acquire"/> on this silo and records its outcome, and puts the claim key on the
/// grain call's span: measured around the grain, so the grains themselves carry no instrumentation.
/// </summary>
public sealed class AcquireCallFilter(ClaimMetrics metrics) : IIncomingGrainCallFilter
{
    public const string ClaimKeyTag = "sandboxbroker.claim_key";
    public const string TenantTag = "sandboxbroker.tenant";

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod is not { Name: nameof(IClaimGrain.Acquire) } method || method.DeclaringType != typeof(IClaimGrain))
        {
            await context.Invoke();
            return;
        }
        if (Activity.Current is { } span)
        {
            // The grain's id is {tenant}/{claim key}: the key as the gateway's span names it, and the tenant beside it.
            var (tenant, claimKey) = ClaimId.Parse(context.TargetId.Key.ToString()!);
            span.SetTag(ClaimKeyTag, claimKey).SetTag(TenantTag, tenant);
        }
        var started = Stopwatch.GetTimestamp();
        string outcome;
        try
        {
            await context.Invoke();
            outcome = context.Result is AcquireResult result ? result.Outcome.ToString().ToLowerInvariant() : "unknown";
        }
        catch (BrokerException e)
        {
            // Error codes are a fixed set (ErrorCodes), so the label stays bounded.
            metrics.Acquired(e.Code.ToLowerInvariant(), Stopwatch.GetElapsedTime(started));
            throw;
        }
        catch
        {
            metrics.Acquired("error", Stopwatch.GetElapsedTime(started));
            throw;
        }
        metrics.Acquired(outcome, Stopwatch.GetElapsedTime(started));
    }
}
