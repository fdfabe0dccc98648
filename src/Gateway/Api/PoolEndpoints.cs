using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>/v1/pools: configuration and levels; changing a pool needs the admin scope.</summary>
public static class PoolEndpoints
{
    public static void MapPoolEndpoints(this IEndpointRouteBuilder app)
    {
        var pools = app.MapGroup("/v1/pools").WithTags("Pools");
        pools.MapGet("", List).WithName("ListPools").WithSummary("Every pool with its configuration and levels.")
            .RequireAuthorization(Policies.Claims).Produces<PoolList>().ProducesErrors();
        pools.MapGet("/{name}", Get).WithName("GetPool").WithSummary("One pool: configuration and levels (ready, provisioning, leased, deleting).")
            .RequireAuthorization(Policies.Claims).Produces<PoolView>().ProducesErrors(404);
        pools.MapPut("/{name}", Put).WithName("PutPool")
            .WithSummary("Create a pool (201) or change it (200); fields left out keep their current (or default) values. Admin.")
            .RequireAuthorization(Policies.Admin).Accepts<PoolBody>("application/json")
            .Produces<PoolView>(StatusCodes.Status201Created).Produces<PoolView>().ProducesErrors(400, 403);
    }

    private static async Task<IResult> List(IClusterClient client) =>
        ApiRoutes.Json(new PoolList((await Pools.ListAsync(client)).Select(PoolView.From).ToList()));

    private static async Task<IResult> Get(string name, IClusterClient client, KnownPools known)
    {
        var pool = ApiRoutes.PoolNameFrom(name, "name");
        if (!await known.ExistsAsync(pool))
        {
            throw ApiError.NotFound($"pool '{pool}' does not exist").ToException();
        }
        try
        {
            return ApiRoutes.Json(PoolView.From(await client.GetGrain<IPoolGrain>(pool).GetStatus()));
        }
        catch (BrokerException e) when (e.Code == ErrorCodes.NotFound)
        {
            throw ApiError.NotFound(e.Message).ToException();
        }
    }

    private static async Task<IResult> Put(string name, HttpContext context, IClusterClient client, KnownPools known)
    {
        name = ApiRoutes.PoolNameFrom(name, "name");
        var body = await ApiBody.ReadAsync(context, new PoolBody());
        var pool = client.GetGrain<IPoolGrain>(name);
        PoolConfig? current;
        try
        {
            current = await pool.GetConfig();
        }
        catch (BrokerException e) when (e.Code == ErrorCodes.NotFound)
        {
            current = null;
        }
        var baseline = current ?? Defaults(name);
        var onEmpty = body.OnEmpty switch
        {
            null => baseline.OnEmpty,
            "create" => OnEmptyPolicy.Create,
            "fail" => OnEmptyPolicy.Fail,
            _ => throw ApiError.BadRequest("on_empty", "on_empty is 'create' or 'fail'").ToException(),
        };
        var config = baseline with
        {
            Provider = body.Provider ?? baseline.Provider,
            Template = body.Template ?? baseline.Template,
            MinReady = body.MinReady ?? baseline.MinReady,
            MaxTotal = body.MaxTotal ?? baseline.MaxTotal,
            DefaultTtl = body.DefaultTtlSeconds is { } ttl ? TimeSpan.FromSeconds(ttl) : baseline.DefaultTtl,
            MaxTtl = body.MaxTtlSeconds is { } max ? TimeSpan.FromSeconds(max) : baseline.MaxTtl,
            IdleTimeout = body.IdleTimeoutSeconds is { } idle ? TimeSpan.FromSeconds(idle) : baseline.IdleTimeout,
            OnEmpty = onEmpty,
            MaxConcurrentCreates = body.MaxConcurrentCreates ?? baseline.MaxConcurrentCreates,
        };
        await pool.Configure(config);
        known.Add(name);
        var view = PoolView.From(await pool.GetStatus());
        return ApiRoutes.Json(view, current is null ? StatusCodes.Status201Created : StatusCodes.Status200OK);
    }

    /// <summary>A new pool's starting point: the local provider, two warm sandboxes, hour-long leases.</summary>
    private static PoolConfig Defaults(string name) =>
        new(name, "local", null, MinReady: 2, MaxTotal: 100, DefaultTtl: TimeSpan.FromHours(1), MaxTtl: TimeSpan.FromHours(24),
            IdleTimeout: null, OnEmpty: OnEmptyPolicy.Create, MaxConcurrentCreates: 4);
}
