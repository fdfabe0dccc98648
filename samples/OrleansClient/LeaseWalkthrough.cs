using Orleans;

namespace SandboxBroker.Samples.OrleansClient;

/// <summary>
/// Acquire, repeat, release on one claim key, for one tenant. The grain's id is <c>{tenant}/{claim key}</c>
/// (<see cref="ClaimGrains.GetClaim"/>): a key belongs to its tenant by construction, so another tenant's same key is
/// another claim with its own sandbox, as through the REST API.
/// </summary>
public sealed class LeaseWalkthrough(IClusterClient client, SampleOptions options, TextWriter output)
{
    public async Task RunAsync()
    {
        ClaimKey.Validate(options.Key);
        var claim = client.GetClaim(options.Tenant, options.Key);
        var request = new AcquireRequest(
            Pool: options.Pool,
            Tenant: options.Tenant,
            Owner: options.Owner ?? options.Key,
            Ttl: options.Ttl,
            Actor: "orleans-client-sample");

        // Acquire is idempotent: a retry after a timeout or a lost answer gets the same lease, never a second sandbox.
        var first = await claim.Acquire(request);
        await output.WriteLineAsync($"acquired {options.Key} tenant={first.Lease.Tenant} sandbox={first.Sandbox.SandboxId} outcome={Name(first.Outcome)}");

        var again = await claim.Acquire(request);
        await output.WriteLineAsync($"repeated {options.Key} tenant={again.Lease.Tenant} sandbox={again.Sandbox.SandboxId} outcome={Name(again.Outcome)}");

        if (options.Keep)
        {
            await output.WriteLineAsync($"kept {options.Key} until {first.Lease.DeadlineAt:O}");
            return;
        }
        var released = await claim.Release("released by the Orleans client sample");
        await output.WriteLineAsync(released is null
            ? $"released {options.Key} nothing=active"
            : $"released {options.Key} tenant={released.Tenant} sandbox={released.SandboxId} status={released.Status.ToString().ToLowerInvariant()}");
    }

    private static string Name(AcquireOutcome outcome) => outcome.ToString().ToLowerInvariant();
}
