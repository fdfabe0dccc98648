using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>The body of PUT /v1/admin/tenants/{tenant}/quota: the whole quota; a field left out takes the default.</summary>
public sealed record TenantQuotaBody(int? MaxActiveLeases = null, int? MaxSandboxesPerPool = null, List<string>? AllowedPools = null);

/// <summary>
/// A tenant's quota and usage. <c>quota</c> is what an admin set (null: none); the other limits are those in force:
/// <c>default_pool_share</c> is the share of each pool's max total the tenant may hold when no per-pool limit is set.
/// Null limits mean none. The counts are this moment's active leases.
/// </summary>
public sealed record TenantQuotaView(
    string Tenant,
    TenantQuotaBody? Quota,
    int? MaxActiveLeases,
    int? MaxSandboxesPerPool,
    double? DefaultPoolShare,
    IReadOnlyList<string>? AllowedPools,
    int ActiveLeases,
    IReadOnlyDictionary<string, int> ActiveLeasesByPool)
{
    public static TenantQuotaView From(TenantUsage u) => new(u.Tenant,
        u.Quota is { } q ? new TenantQuotaBody(q.MaxActiveLeases, q.MaxSandboxesPerPool, q.AllowedPools?.ToList()) : null,
        u.MaxActiveLeases, u.MaxSandboxesPerPool, u.PoolShare, u.AllowedPools, u.ActiveLeases, u.ActiveByPool);
}

/// <summary>/v1/admin/tenants/{tenant}/quota: read, set and clear a tenant's quotas (admin scope).</summary>
public static class TenantEndpoints
{
    public static void MapTenantEndpoints(this IEndpointRouteBuilder app)
    {
        var quota = app.MapGroup("/v1/admin/tenants/{tenant}/quota").WithTags("Admin").RequireAuthorization(Policies.Admin);
        quota.MapGet("", Get).WithName("GetTenantQuota").WithSummary("The tenant's quota, the limits in force and its active leases per pool.")
            .Produces<TenantQuotaView>().ProducesErrors(403);
        quota.MapPut("", Put).WithName("SetTenantQuota")
            .WithSummary("Set the tenant's quota (stored; in force for the next acquire). A field left out takes the default.")
            .Accepts<TenantQuotaBody>("application/json").Produces<TenantQuotaView>().ProducesErrors(403);
        quota.MapDelete("", Delete).WithName("ClearTenantQuota").WithSummary("Clear the tenant's quota: the defaults apply again.")
            .Produces<TenantQuotaView>().ProducesErrors(403);
    }

    private static string TenantFrom(string tenant) =>
        TenantName.IsValid(tenant) ? tenant : throw ApiError.BadRequest("tenant", TenantName.Rule).ToException();

    private static async Task<IResult> Get(string tenant, IClusterClient client) =>
        ApiRoutes.Json(TenantQuotaView.From(await client.GetGrain<ITenantGrain>(TenantFrom(tenant)).GetUsage()));

    private static async Task<IResult> Put(string tenant, HttpContext context, IClusterClient client)
    {
        var grain = client.GetGrain<ITenantGrain>(TenantFrom(tenant));
        var body = await ApiBody.ReadAsync(context, new TenantQuotaBody());
        var quota = new TenantQuota(body.MaxActiveLeases, body.MaxSandboxesPerPool, body.AllowedPools?.Distinct(StringComparer.Ordinal).ToList());
        if (quota.Problem() is { } problem)
        {
            throw ApiError.BadRequest(problem.Field, problem.Reason).ToException();
        }
        return ApiRoutes.Json(TenantQuotaView.From(await grain.SetQuota(quota)));
    }

    private static async Task<IResult> Delete(string tenant, IClusterClient client) =>
        ApiRoutes.Json(TenantQuotaView.From(await client.GetGrain<ITenantGrain>(TenantFrom(tenant)).SetQuota(null)));
}
