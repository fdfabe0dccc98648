using Microsoft.Extensions.Options;
using SandboxBroker.Gateway.Webhooks;
using SandboxBroker.Gateway.Auth;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Api;

/// <summary>/v1/admin: counts, reconcile and cleanup on demand, API tokens. Everything here needs the admin scope.</summary>
public static class AdminEndpoints
{
    private const int SweepLimit = 1000;

    public static void MapAdminEndpoints(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin").WithTags("Admin").RequireAuthorization(Policies.Admin);
        admin.MapGet("/stats", Stats).WithName("GetStats").WithSummary("Sandboxes and claims by status, and every pool's levels.")
            .Produces<StatsView>().ProducesErrors(403);
        admin.MapPost("/sync", Sync).WithName("Sync")
            .WithSummary("Reconcile every provider now: unowned provider sandboxes are deleted, vanished ones marked stale.")
            .Produces<SyncView>().ProducesErrors(403, 503);
        admin.MapPost("/cleanup", Cleanup).WithName("Cleanup")
            .WithSummary("Expire overdue leases and retry every pending deletion now.")
            .Produces<CleanupView>().ProducesErrors(403);
        admin.MapPost("/tokens", CreateToken).WithName("CreateToken")
            .WithSummary("Mint a token for a tenant; the secret is in this answer only.")
            .Accepts<CreateTokenBody>("application/json").Produces<MintedTokenView>(StatusCodes.Status201Created).ProducesErrors(400, 403);
        admin.MapGet("/tokens", ListTokens).WithName("ListTokens").WithSummary("Tokens (never their secrets), optionally of one tenant.")
            .Produces<TokenList>().ProducesErrors(403);
        admin.MapDelete("/tokens/{tokenId}", RevokeToken).WithName("RevokeToken").WithSummary("Revoke a token.")
            .Produces<TokenView>().ProducesErrors(403, 404);
    }

    private static async Task<IResult> Stats(HttpContext context, IClusterClient client, BrokerIndex index)
    {
        var sandboxes = await index.CountSandboxesByStatusAsync(null, context.RequestAborted);
        var claims = await index.CountClaimsByStatusAsync(null, context.RequestAborted);
        var pools = await Pools.ListAsync(client);
        return ApiRoutes.Json(new StatsView(sandboxes, claims, pools.Select(PoolView.From).ToList()));
    }

    private static async Task<IResult> Sync(IClusterClient client)
    {
        var providers = (await Pools.ListAsync(client)).Select(p => p.Config.Provider).Distinct(StringComparer.OrdinalIgnoreCase).Order();
        var reports = new List<ReconcileView>();
        foreach (var provider in providers)
        {
            reports.Add(ReconcileView.From(await client.GetGrain<IReconcilerGrain>(provider).Reconcile()));
        }
        return ApiRoutes.Json(new SyncView(reports));
    }

    private static async Task<IResult> Cleanup(HttpContext context, IClusterClient client, BrokerIndex index, TimeProvider time, ILoggerFactory loggers)
    {
        var ct = context.RequestAborted;
        var logger = loggers.CreateLogger("SandboxBroker.Gateway.Cleanup");
        int expired = 0, retried = 0, errors = 0;
        var overdue = await index.ListOverdueClaimsAsync(time.GetUtcNow(), SweepLimit, ct);
        foreach (var key in overdue)
        {
            try
            {
                // Reading a claim ends a lease whose deadline has passed.
                // The index knows a claim by its grain id ({tenant}/{key}).
                if (await client.GetGrain<IClaimGrain>(key).Get() is null)
                {
                    expired++;
                }
            }
            catch (Exception e) when (e is BrokerException or OrleansException or TimeoutException)
            {
                errors++;
                logger.LogWarning(e, "Cleanup could not check claim {ClaimKey}", key);
            }
        }
        foreach (var sandboxId in await index.ListPendingDeletionAsync(SweepLimit, ct))
        {
            try
            {
                await client.GetGrain<ISandboxGrain>(sandboxId).Discard("cleanup sweep");
                retried++;
            }
            catch (Exception e) when (e is BrokerException or OrleansException or TimeoutException)
            {
                errors++;
                logger.LogWarning(e, "Cleanup could not retry the deletion of sandbox {SandboxId}", sandboxId);
            }
        }
        return ApiRoutes.Json(new CleanupView(overdue.Count, expired, retried, errors));
    }

    private static async Task<IResult> CreateToken(HttpContext context, ApiTokenStore store, IOptions<WebhookSettings> webhooks)
    {
        var body = await ApiBody.ReadAsync(context, new CreateTokenBody());
        var tenant = TokenRules.MintableTenant(body.Tenant, webhooks.Value.Tenant);
        var scopes = TokenRules.Scopes(body.Scopes);
        TimeSpan? lifetime = body.ExpiresInSeconds switch
        {
            null => null,
            <= 0 => throw ApiError.BadRequest("expires_in_seconds", "expires_in_seconds must be positive").ToException(),
            var s => TimeSpan.FromSeconds(s.Value),
        };
        if (body.Name is { Length: > 100 })
        {
            throw ApiError.BadRequest("name", "name is at most 100 characters").ToException();
        }
        var minted = await store.CreateAsync(tenant, scopes, body.Name, lifetime, context.RequestAborted);
        return ApiRoutes.Json(new MintedTokenView(minted.Secret, TokenView.From(minted.Token)), StatusCodes.Status201Created);
    }

    private static async Task<IResult> ListTokens(string? tenant, HttpContext context, ApiTokenStore store) =>
        ApiRoutes.Json(new TokenList((await store.ListAsync(tenant is null ? null : TokenRules.Tenant(tenant), context.RequestAborted))
            .Select(TokenView.From).ToList()));

    private static async Task<IResult> RevokeToken(string tokenId, HttpContext context, ApiTokenStore store, TokenValidator validator)
    {
        if (tokenId.Length is 0 or > 64 || !tokenId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw ApiError.BadRequest("token_id", "a token id is 1-64 characters of A-Z, a-z, 0-9, '-' and '_' (tok_…)").ToException();
        }
        var token = await store.RevokeAsync(tokenId, context.RequestAborted)
            ?? throw ApiError.NotFound($"token '{tokenId}' does not exist").ToException();
        validator.Forget(tokenId);
        return ApiRoutes.Json(TokenView.From(token));
    }
}
