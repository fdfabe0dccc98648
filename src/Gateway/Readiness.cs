using Orleans.Runtime;

namespace SandboxBroker.Gateway;

/// <summary>Ready only when the cluster answers a call.</summary>
public static class Readiness
{
    public static async Task<IResult> CheckAsync(IClusterClient client, CancellationToken ct)
    {
        try
        {
            var management = client.GetGrain<IManagementGrain>(0);
            var hosts = await management.GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(5), ct);
            return hosts.Count > 0
                ? Results.Ok(new { status = "ready", silos = hosts.Count })
                : Results.Json(new { status = "not_ready", reason = "no active silo" }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return Results.Json(new { status = "not_ready", reason = e.Message }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }
}
