using System.Diagnostics;
using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>
/// /v1/claims/{key}: acquire, read, touch, extend, release and the history of one claim key of the caller's tenant. Keys are
/// per tenant (<see cref="ClaimId"/>): another tenant's key is simply not in the caller's namespace and answers like an
/// unused one. An admin may act in another tenant's namespace with <c>?tenant=</c>.
/// </summary>
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

    /// <summary>
    /// The tenant whose claims a call acts on: the caller's own; an admin may name another (<c>?tenant=</c>). A non-admin
    /// naming another tenant is refused without looking at any claim, so the answer says nothing about that tenant's keys.
    /// </summary>
    public static string TenantOf(HttpContext context, string? tenant)
    {
        var caller = context.Caller();
        if (tenant is null || tenant == caller.Tenant)
        {
            return caller.Tenant;
        }
        if (!TenantName.IsValid(tenant))
        {
            throw ApiError.BadRequest("tenant", TenantName.Rule).ToException();
        }
        return caller.IsAdmin ? tenant : throw ApiError.Forbidden("only an admin token may act on another tenant's claims").ToException();
    }

    private static async Task<IResult> Acquire(string key, string? tenant, HttpContext context, GrainReferences grains, BrokerMetrics metrics, AcquireAdmission admission,
        KnownPools pools)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var owner = TenantOf(context, tenant);
        if (admission.RefusalNow(owner, claimKey) is { } refusal)
        {
            return refusal.ToResult(context); // shed before the body is read: under overload most acquires end here
        }
        var body = await ApiBody.ReadAsync(context, new AcquireBody());
        var request = AcquireRequests.From(body, owner, defaultOwner: claimKey, actor: context.Caller().TokenId);
        await pools.RequireAsync(request.Pool, "pool"); // a made-up pool name activates no pool grain
        var started = Stopwatch.GetTimestamp();
        AcquireResult result;
        try
        {
            result = await admission.AcquireAsync(grains, owner, claimKey, request, context.RequestAborted);
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

    private static async Task<IResult> Get(string key, string? tenant, HttpContext context, GrainReferences grains)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var claim = grains.Claim(TenantOf(context, tenant), claimKey);
        var lease = await ApiRoutes.CallAsync(claim.Get, context.RequestAborted)
            ?? throw ApiError.NotFound($"claim '{claimKey}' has no active lease").ToException();
        var sandbox = await grains.Sandbox(lease.SandboxId).Get();
        return ApiRoutes.Json(ClaimView.From(lease, sandbox));
    }

    private static async Task<IResult> Touch(string key, string? tenant, HttpContext context, GrainReferences grains)
    {
        var claim = grains.Claim(TenantOf(context, tenant), ApiRoutes.ClaimKeyFrom(key));
        var lease = await ApiRoutes.CallAsync(claim.Touch, context.RequestAborted);
        return ApiRoutes.Json(ClaimView.From(lease));
    }

    private static async Task<IResult> Extend(string key, string? tenant, HttpContext context, GrainReferences grains)
    {
        var claim = grains.Claim(TenantOf(context, tenant), ApiRoutes.ClaimKeyFrom(key));
        var body = await ApiBody.ReadAsync(context, new ExtendBody());
        var ttl = body.TtlSeconds switch
        {
            null => throw ApiError.BadRequest("ttl_seconds", "ttl_seconds is required").ToException(),
            <= 0 => throw ApiError.BadRequest("ttl_seconds", "ttl_seconds must be positive").ToException(),
            var seconds => TimeSpan.FromSeconds(seconds.Value),
        };
        var lease = await ApiRoutes.CallAsync(() => claim.Extend(ttl), context.RequestAborted);
        return ApiRoutes.Json(ClaimView.From(lease));
    }

    private static async Task<IResult> Release(string key, string? reason, string? tenant, HttpContext context, GrainReferences grains, BrokerMetrics metrics,
        AcquireAdmission admission)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var owner = TenantOf(context, tenant);
        var grain = grains.Claim(owner, claimKey);
        if (reason is { Length: > 200 })
        {
            throw ApiError.BadRequest("reason", "reason is at most 200 characters").ToException();
        }
        admission.Ended(owner, claimKey);
        var ended = await ApiRoutes.CallAsync(() => grain.Release(string.IsNullOrWhiteSpace(reason) ? "released through the API" : reason), context.RequestAborted);
        if (ended is not null)
        {
            metrics.CountRelease("api");
            return ApiRoutes.Json(ClaimView.From(ended));
        }
        // Nothing active: a repeated release answers the lease it released, as before.
        var last = (await grain.History()).FirstOrDefault();
        return last is { Status: LeaseStatus.Released }
            ? ApiRoutes.Json(ClaimView.From(last))
            : throw ApiError.NotFound($"claim '{claimKey}' has no active lease").ToException();
    }

    private static async Task<IResult> History(string key, string? tenant, HttpContext context, GrainReferences grains)
    {
        var claimKey = ApiRoutes.ClaimKeyFrom(key);
        var leases = await grains.Claim(TenantOf(context, tenant), claimKey).History();
        return leases.Count == 0
            ? throw ApiError.NotFound($"claim '{claimKey}' has no leases").ToException()
            : ApiRoutes.Json(new ClaimHistoryView(claimKey, leases.Select(l => ClaimView.From(l)).ToList()));
    }
}
