using System.Globalization;
using System.Text;
using SandboxBroker.Gateway.Auth;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Api;

/// <summary>/v1/sandboxes: one sandbox, or a page of them. A tenant sees its own; an admin sees all.</summary>
public static class SandboxEndpoints
{
    private const int DefaultLimit = 50;
    private const int MaxLimit = 500;
    private const int MaxOwnerLength = 200;
    private const int MaxCursorLength = 256;
    private static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void MapSandboxEndpoints(this IEndpointRouteBuilder app)
    {
        var sandboxes = app.MapGroup("/v1/sandboxes").WithTags("Sandboxes").RequireAuthorization(Policies.Claims);
        sandboxes.MapGet("", List).WithName("ListSandboxes")
            .WithSummary("Sandboxes in creation order, filtered by status, pool and owner; pass next_cursor as cursor for the next page.")
            .Produces<SandboxPage>().ProducesErrors(400);
        sandboxes.MapGet("/{id}", Get).WithName("GetSandbox")
            .WithSummary("One sandbox. With X-Track-ID (the lab-client contract) the answer has that contract's shape.")
            .Produces<SandboxView>().Produces<CompatSandboxView>().ProducesErrors(400, 403, 404);
    }

    private static async Task<IResult> Get(string id, HttpContext context, IClusterClient client)
    {
        if (CompatEndpoints.TrackOf(context.Request) is not null)
        {
            return await CompatEndpoints.GetSandbox(id, context, client);
        }
        var sandboxId = ApiRoutes.SandboxIdFrom(id);
        var caller = context.Caller();
        var sandbox = await client.GetGrain<ISandboxGrain>(sandboxId).Get()
            ?? throw ApiError.NotFound($"sandbox '{sandboxId}' does not exist").ToException();
        if (!caller.IsAdmin && sandbox.Tenant != caller.Tenant)
        {
            throw ApiError.Forbidden($"sandbox '{sandboxId}' belongs to another tenant").ToException();
        }
        return ApiRoutes.Json(SandboxView.From(sandbox, withConnection: true));
    }

    private static async Task<IResult> List(
        string? status, string? pool, string? owner, string? limit, string? cursor, HttpContext context, BrokerIndex index)
    {
        if (status is not null && !Enum.GetValues<SandboxStatus>().Any(s => SandboxLifecycle.Format(s) == status))
        {
            throw ApiError.BadRequest("status", $"status is one of {string.Join(", ", Enum.GetValues<SandboxStatus>().Select(SandboxLifecycle.Format))}").ToException();
        }
        var size = DefaultLimit;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out size) || size is < 1 or > MaxLimit))
        {
            throw ApiError.BadRequest("limit", $"limit is a whole number from 1 to {MaxLimit}").ToException();
        }
        if (pool is not null)
        {
            ApiRoutes.PoolNameFrom(pool, "pool");
        }
        if (owner is { Length: 0 or > MaxOwnerLength })
        {
            throw ApiError.BadRequest("owner", $"owner is 1-{MaxOwnerLength} characters").ToException();
        }
        var after = cursor is null ? null : DecodeCursor(cursor);
        var query = new SandboxQuery(context.Caller().TenantFilter, status, pool, owner, after, size);
        var rows = await index.ListSandboxesAsync(query, context.RequestAborted);
        var next = rows.Count == size ? EncodeCursor(new SandboxCursor(rows[^1].CreatedAt, rows[^1].SandboxId)) : null;
        return ApiRoutes.Json(new SandboxPage(rows.Select(SandboxView.From).ToList(), next));
    }

    private static string EncodeCursor(SandboxCursor cursor) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{cursor.CreatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture)}|{cursor.SandboxId}"))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>
    /// A cursor is taken only in the exact form <see cref="EncodeCursor"/> writes: base64url of "ticks|sandbox id".
    /// Anything else (other characters, bytes that are not UTF-8, an id no sandbox can have) is a 400, never a query.
    /// </summary>
    private static SandboxCursor DecodeCursor(string cursor)
    {
        try
        {
            if (cursor.Length is > 0 and <= MaxCursorLength && cursor.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                var base64 = cursor.Replace('-', '+').Replace('_', '/');
                var text = StrictUtf8.GetString(Convert.FromBase64String(base64.PadRight(base64.Length + (4 - base64.Length % 4) % 4, '=')));
                var bar = text.IndexOf('|');
                if (bar > 0 && long.TryParse(text[..bar], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) &&
                    ApiRoutes.IsSandboxId(text[(bar + 1)..]))
                {
                    return new SandboxCursor(new DateTimeOffset(ticks, TimeSpan.Zero), text[(bar + 1)..]);
                }
            }
        }
        catch (FormatException)
        {
        }
        catch (ArgumentException) // ticks out of range; bytes that are not UTF-8
        {
        }
        throw ApiError.BadRequest("cursor", "cursor is not one this API returned (use next_cursor as given)").ToException();
    }
}
