using System.Diagnostics;
using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>/v1/claims/{key}: acquire, read, touch, extend, release and the history of one claim key.</summary>
public static class ClaimEndpoints
{
    public const string OutcomeHeader = "X-Acquire-Outcome";

    public static void MapClaimEndpoints(this IEndpointRouteBuilder app)
    {
        var claims = app.MapGroup("/v1/claims/{key}").WithTags("Claims").RequireAuthorization(Policies.Claims);
        claims.MapPut("", Acquire).WithName("AcquireClaim")
            .WithSummary("Acquire the key's sandbox: 201 with a new lease, 200 with the active one (idempotent).")
            .Accepts<AcquireBody>("application/json").Produces<ClaimView>(StatusCodes.Status201Created).Produces<ClaimView>()
            .ProducesErrors(400, 403, 409, 502, 503);
        claims.MapGet("", Get).WithName("GetClaim").WithSummary("The key's active lease and its sandbox.")
            .Produces<ClaimView>().ProducesErrors(400, 403, 404);
        claims.MapPost("/touch", Touch).WithName("TouchClaim").WithSummary("Record activity: pushes the idle deadline out.")
            .Produces<ClaimView>().ProducesErrors(400, 403, 409);
        claims.MapPost("/extend", Extend).WithName("ExtendClaim").WithSummary("Move the lease's TTL deadline to now + ttl_seconds.")
            .Accepts<ExtendBody>("application/json").Produces<ClaimView>().ProducesErrors(400, 403, 409);
        claims.MapDelete("", Release).WithName("ReleaseClaim")
            .WithSummary("Release the lease; its sandbox is deleted. Repeating it answers the same released lease.")
            .Produces<ClaimView>().ProducesErrors(400, 403, 404);
        claims.MapGet("/history", History).WithName("GetClaimHistory").WithSummary("The active lease, then ended leases, newest first.")
            .Produces<ClaimHistoryView>().ProducesErrors(400, 403, 404);
    }

    private static async Task<IResult> Acquire(string key, HttpContext context, IClusterClient client, BrokerMetrics metrics, AcquireAdmission admission,
        KnownPools pools)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var body = await ApiBody.ReadAsync(context, new AcquireBody());
        var caller = context.Caller();
        var request = AcquireRequests.From(body, caller.Tenant, defaultOwner: claimKey, actor: caller.TokenId);
        await pools.RequireAsync(request.Pool, "pool"); // a made-up pool name activates no pool grain
        var started = Stopwatch.GetTimestamp();
        AcquireResult result;
        try
        {
            result = await admission.AcquireAsync(client, claimKey, request, context.RequestAborted);
        }
        catch (BrokerException e) when (e.Code == ErrorCodes.NotFound && e.Field == "pool")
        {
            throw ApiError.BadRequest("pool", e.Message).ToException();
        }
        metrics.ObserveAcquire(result.Outcome, ApiRoutes.Elapsed(started));
        context.Response.Headers[OutcomeHeader] = result.Outcome.ToString().ToLowerInvariant();
        var view = ClaimView.From(result.Lease, result.Sandbox);
        if (result.Outcome == AcquireOutcome.Repeat)
        {
            return ApiRoutes.Json(view);
        }
        context.Response.Headers.Location = $"/v1/claims/{Uri.EscapeDataString(claimKey)}";
        return ApiRoutes.Json(view, StatusCodes.Status201Created);
    }

    private static async Task<IResult> Get(string key, HttpContext context, IClusterClient client)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var lease = await ApiRoutes.CallAsync(() => client.GetGrain<IClaimGrain>(claimKey).Get(context.Caller().TenantFilter), context.RequestAborted)
            ?? throw ApiError.NotFound($"claim '{claimKey}' has no active lease").ToException();
        var sandbox = await client.GetGrain<ISandboxGrain>(lease.SandboxId).Get();
        return ApiRoutes.Json(ClaimView.From(lease, sandbox));
    }

    private static async Task<IResult> Touch(string key, HttpContext context, IClusterClient client)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var lease = await ApiRoutes.CallAsync(() => client.GetGrain<IClaimGrain>(claimKey).Touch(context.Caller().TenantFilter), context.RequestAborted);
        return ApiRoutes.Json(ClaimView.From(lease));
    }

    private static async Task<IResult> Extend(string key, HttpContext context, IClusterClient client)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var body = await ApiBody.ReadAsync(context, new ExtendBody());
        var ttl = body.TtlSeconds switch
        {
            null => throw ApiError.BadRequest("ttl_seconds", "ttl_seconds is required").ToException(),
            <= 0 => throw ApiError.BadRequest("ttl_seconds", "ttl_seconds must be positive").ToException(),
            var seconds => TimeSpan.FromSeconds(seconds.Value),
        };
        var lease = await ApiRoutes.CallAsync(() => client.GetGrain<IClaimGrain>(claimKey).Extend(ttl, context.Caller().TenantFilter), context.RequestAborted);
        return ApiRoutes.Json(ClaimView.From(lease));
    }

    private static async Task<IResult> Release(string key, string? reason, HttpContext context, IClusterClient client, BrokerMetrics metrics)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        if (reason is { Length: > 200 })
        {
            throw ApiError.BadRequest("reason", "reason is at most 200 characters").ToException();
        }
        var tenant = context.Caller().TenantFilter;
        var grain = client.GetGrain<IClaimGrain>(claimKey);
        var ended = await ApiRoutes.CallAsync(() => grain.Release(string.IsNullOrWhiteSpace(reason) ? "released through the API" : reason, tenant), context.RequestAborted);
        if (ended is not null)
        {
            metrics.CountRelease("api");
            return ApiRoutes.Json(ClaimView.From(ended));
        }
        // Nothing active: a repeated release answers the lease it released, as before.
        var last = (await grain.History(tenant)).FirstOrDefault();
        return last is { Status: LeaseStatus.Released }
            ? ApiRoutes.Json(ClaimView.From(last))
            : throw ApiError.NotFound($"claim '{claimKey}' has no active lease").ToException();
    }

    private static async Task<IResult> History(string key, HttpContext context, IClusterClient client)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var leases = await client.GetGrain<IClaimGrain>(claimKey).History(context.Caller().TenantFilter);
        return leases.Count == 0
            ? throw ApiError.NotFound($"claim '{claimKey}' has no leases").ToException()
            : ApiRoutes.Json(new ClaimHistoryView(claimKey, leases.Select(l => ClaimView.From(l)).ToList()));
    }
}
