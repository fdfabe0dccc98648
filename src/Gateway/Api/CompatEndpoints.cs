using System.Diagnostics;
using SandboxBroker.Gateway.Auth;

namespace SandboxBroker.Gateway.Api;

/// <summary>The lab clients' contract: the track id is the claim key; one sandbox per track for as long as its lease lives.</summary>
public sealed record CompatAllocation(string SandboxId, string Name, string? ExternalId, long AllocatedAt, long ExpiresAt);

public sealed record CompatSandboxView(
    string SandboxId, string Name, string? ExternalId, string Status, string? AllocatedToTrack, long? AllocatedAt, long? ExpiresAt);

public sealed record CompatDeletion(string SandboxId, string Status, long DeletionRequestedAt);

/// <summary>Settings of the compatible endpoints ("Compat" section).</summary>
public sealed class CompatSettings
{
    public const string Section = "Compat";

    /// <summary>The pool /v1/allocate takes sandboxes from.</summary>
    public string Pool { get; set; } = "default";
}

/// <summary>
/// POST /v1/allocate, GET /v1/sandboxes/{id} with X-Track-ID and POST /v1/sandboxes/{id}/mark-for-deletion, as the
/// Sandbox-API-Broker contract has them (times in epoch seconds). The track id (X-Track-ID, or its alias
/// X-Instruqt-Sandbox-ID) is the claim key, so the claim grain makes allocation exactly-once per track.
/// </summary>
public static class CompatEndpoints
{
    public const string TrackHeader = "X-Track-ID";
    public const string TrackAliasHeader = "X-Instruqt-Sandbox-ID";
    public const string TrackNameHeader = "X-Instruqt-Track-ID";
    public const string IdempotencyHeader = "Idempotency-Key";

    /// <summary>Headers kept as labels are label values: at most this long.</summary>
    private const int MaxLabelHeaderLength = 256;

    public static void MapCompatEndpoints(this IEndpointRouteBuilder app)
    {
        var compat = app.MapGroup("/v1").WithTags("Lab clients (compatible)").RequireAuthorization(Policies.Claims);
        compat.MapPost("/allocate", Allocate).WithName("Allocate")
            .WithSummary("Allocate the track's sandbox (X-Track-ID): 201 new, 200 the same sandbox again while its lease lives.")
            .Produces<CompatAllocation>(StatusCodes.Status201Created).Produces<CompatAllocation>().ProducesErrors(400, 403, 409, 503);
        compat.MapPost("/sandboxes/{id}/mark-for-deletion", MarkForDeletion).WithName("MarkForDeletion")
            .WithSummary("Release the track's sandbox; it is deleted at the provider.")
            .Produces<CompatDeletion>().ProducesErrors(400, 403, 404);
    }

    /// <summary>The track id of a compatible call, or null.</summary>
    public static string? TrackOf(HttpRequest request)
    {
        string? track = request.Headers[TrackHeader];
        if (string.IsNullOrEmpty(track))
        {
            track = request.Headers[TrackAliasHeader];
        }
        return string.IsNullOrEmpty(track) ? null : track;
    }

    private static string RequireTrack(HttpRequest request)
    {
        var track = TrackOf(request) ?? throw ApiError.BadRequest(TrackHeader, $"the {TrackHeader} header is required").ToException();
        try
        {
            ClaimKey.Validate(track);
        }
        catch (BrokerException e)
        {
            throw ApiError.BadRequest(TrackHeader, e.Message).ToException();
        }
        return track;
    }

    private static async Task<IResult> Allocate(HttpContext context, GrainReferences grains, BrokerMetrics metrics, AcquireAdmission admission,
        Microsoft.Extensions.Options.IOptions<CompatSettings> settings)
    {
        var track = RequireTrack(context.Request);
        var caller = context.Caller();
        if (admission.RefusalNow(caller.Tenant, track) is { } refusal)
        {
            return refusal.ToResult(context);
        }
        var labels = new Dictionary<string, string> { ["track_id"] = track };
        if (ApiInput.Header(context.Request, TrackNameHeader, MaxLabelHeaderLength) is { } trackName)
        {
            labels["track_name"] = trackName;
        }
        if (ApiInput.Header(context.Request, IdempotencyHeader, MaxLabelHeaderLength) is { } idempotencyKey)
        {
            labels["idempotency_key"] = idempotencyKey;
        }
        var request = new AcquireRequest(settings.Value.Pool, caller.Tenant, track, Labels: labels, Actor: caller.TokenId);
        var started = Stopwatch.GetTimestamp();
        var result = await admission.AcquireAsync(grains, caller.Tenant, track, request, context.RequestAborted);
        metrics.ObserveAcquire(result.Outcome, ApiRoutes.Elapsed(started));
        context.Response.Headers[ClaimEndpoints.OutcomeHeader] = result.Outcome.ToString().ToLowerInvariant();
        var view = new CompatAllocation(result.Sandbox.SandboxId, result.Sandbox.Name, result.Sandbox.ExternalId,
            result.Lease.AcquiredAt.ToUnixTimeSeconds(), result.Lease.ExpiresAt.ToUnixTimeSeconds());
        return ApiRoutes.Json(view, result.Outcome == AcquireOutcome.Repeat ? StatusCodes.Status200OK : StatusCodes.Status201Created);
    }

    public static async Task<IResult> GetSandbox(string id, HttpContext context, IClusterClient client)
    {
        var (sandbox, lease) = await OwnedSandbox(id, context, client);
        return ApiRoutes.Json(new CompatSandboxView(sandbox.SandboxId, sandbox.Name, sandbox.ExternalId, StatusOf(sandbox.Status),
            sandbox.ClaimKey, lease?.AcquiredAt.ToUnixTimeSeconds(), lease?.ExpiresAt.ToUnixTimeSeconds()));
    }

    private static async Task<IResult> MarkForDeletion(string id, HttpContext context, IClusterClient client, BrokerMetrics metrics)
    {
        var (sandbox, lease) = await OwnedSandbox(id, context, client);
        var claim = client.GetClaim(sandbox.Tenant!, sandbox.ClaimKey!);
        if (lease is { Status: LeaseStatus.Active })
        {
            lease = await ApiRoutes.CallAsync(() => claim.Release("mark-for-deletion"), context.RequestAborted) ?? lease;
            metrics.CountRelease("mark-for-deletion");
        }
        var requestedAt = lease?.EndedAt ?? sandbox.UpdatedAt;
        return ApiRoutes.Json(new CompatDeletion(sandbox.SandboxId, "pending_deletion", requestedAt.ToUnixTimeSeconds()));
    }

    /// <summary>The sandbox, when the calling track (and tenant) holds or held it; 404 unknown, 403 someone else's.</summary>
    private static async Task<(SandboxInfo Sandbox, Lease? Lease)> OwnedSandbox(string id, HttpContext context, IClusterClient client)
    {
        var sandboxId = ApiRoutes.SandboxIdFrom(id);
        var track = RequireTrack(context.Request);
        var caller = context.Caller();
        var sandbox = await client.GetGrain<ISandboxGrain>(sandboxId).Get()
            ?? throw ApiError.NotFound($"sandbox '{sandboxId}' does not exist").ToException();
        if (sandbox.ClaimKey != track || sandbox.Tenant is null || (!caller.IsAdmin && sandbox.Tenant != caller.Tenant))
        {
            throw ApiError.Forbidden($"sandbox '{sandboxId}' is not allocated to track '{track}'").ToException();
        }
        var history = await client.GetClaim(sandbox.Tenant, track).History();
        return (sandbox, history.FirstOrDefault(l => l.SandboxId == sandboxId));
    }

    /// <summary>The contract's status words.</summary>
    private static string StatusOf(SandboxStatus status) => status switch
    {
        SandboxStatus.Ready => "available",
        SandboxStatus.Leased => "allocated",
        _ when SandboxLifecycle.IsPendingDeletion(status) => "pending_deletion",
        _ => SandboxLifecycle.Format(status),
    };
}
