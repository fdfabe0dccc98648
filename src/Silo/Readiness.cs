using Npgsql;
using Orleans.Runtime;

namespace SandboxBroker.Silo;

/// <summary>Ready when Postgres answers and this silo is an active member of the cluster.</summary>
public static class Readiness
{
    public static async Task<IResult> CheckAsync(NpgsqlDataSource dataSource, IClusterMembershipService membership, ILocalSiloDetails local, CancellationToken ct)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress);
        string? postgres = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(timeout.Token);
        }
        catch (Exception e)
        {
            postgres = e.Message;
        }
        var ready = postgres is null && status == SiloStatus.Active;
        var body = new
        {
            status = ready ? "ready" : "not_ready",
            silo = local.SiloAddress.ToString(),
            silo_status = status.ToString().ToLowerInvariant(),
            postgres = postgres ?? "ok",
        };
        return ready ? Results.Ok(body) : Results.Json(body, statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}
