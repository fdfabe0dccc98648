using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using SandboxBroker.Gateway.Api;
using SandboxBroker.Gateway.Auth;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Webhooks;

/// <summary>
/// <c>POST /v1/webhooks/github</c> (anonymous: the signature is the authentication; never rate limited by tenant) and
/// the admin view of deliveries under <c>/v1/admin/webhooks</c>.
/// </summary>
public static class WebhookEndpoints
{
    public const string EventHeader = "X-GitHub-Event";
    public const string DeliveryHeader = "X-GitHub-Delivery";
    private const int DefaultLimit = 100;
    private const int MaxLimit = 1000;

    public static IServiceCollection AddGitHubWebhooks(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(WebhookSettings.Bind(configuration)));
        services.AddSingleton<WebhookDeliveryStore>();
        services.AddSingleton<DeliverySignal>();
        services.AddHostedService<DeliveryProcessor>();
        return services;
    }

    public static void MapWebhookEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/webhooks/github", Receive).WithTags("Webhooks").WithName("GitHubWebhook")
            .WithSummary("A GitHub webhook delivery (issues, issue_comment): verified by X-Hub-Signature-256, recorded, answered 202 and processed asynchronously.")
            .AllowAnonymous().DisableRateLimiting()
            .Accepts<JsonElement>("application/json")
            .Produces<WebhookReceipt>(StatusCodes.Status202Accepted).Produces<WebhookReceipt>()
            .Produces<ErrorEnvelope>(StatusCodes.Status400BadRequest).Produces<ErrorEnvelope>(StatusCodes.Status401Unauthorized)
            .Produces<ErrorEnvelope>(StatusCodes.Status413PayloadTooLarge).Produces<ErrorEnvelope>(StatusCodes.Status415UnsupportedMediaType)
            .Produces<ErrorEnvelope>(StatusCodes.Status503ServiceUnavailable);

        var admin = app.MapGroup("/v1/admin/webhooks/deliveries").WithTags("Admin").RequireAuthorization(Policies.Admin);
        admin.MapGet("", List).WithName("ListWebhookDeliveries")
            .WithSummary("Webhook deliveries, newest first; status is received, processed, ignored or failed.")
            .Produces<DeliveryList>().ProducesErrors(400, 403);
        admin.MapGet("/{deliveryId}", Get).WithName("GetWebhookDelivery").WithSummary("One webhook delivery.")
            .Produces<DeliveryView>().ProducesErrors(403, 404);
        admin.MapPost("/{deliveryId}/retry", Retry).WithName("RetryWebhookDelivery")
            .WithSummary("Process a failed or ignored delivery again (a processed one is never applied twice).")
            .Produces<DeliveryView>(StatusCodes.Status202Accepted).ProducesErrors(403, 404, 409);
    }

    private static async Task<IResult> Receive(
        HttpContext context, WebhookDeliveryStore store, DeliverySignal signal, IOptions<WebhookSettings> options, BrokerMetrics metrics,
        ILoggerFactory loggers)
    {
        var settings = options.Value;
        var request = context.Request;
        if (settings.Secrets.Length == 0)
        {
            throw new ApiError(StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.Unavailable,
                "GitHub webhooks are not configured here: set Webhooks:GitHub:Secrets or BROKER_GITHUB_WEBHOOK_SECRET").ToException();
        }
        SignedBody signed;
        try
        {
            signed = await SignedBody.ReadAsync(context, settings.Secrets);
        }
        catch (ApiErrorException e) when (e.Error.Status == StatusCodes.Status401Unauthorized)
        {
            metrics.CountWebhookReceived("unauthorized");
            string? signature = request.Headers[GitHubSignature.Header];
            loggers.CreateLogger(typeof(WebhookEndpoints)).LogWarning("GitHub webhook refused: {Reason} (delivery {DeliveryId}, from {Remote})",
                string.IsNullOrEmpty(signature) ? "no signature" : "signature mismatch", ApiInput.Printable(request.Headers[DeliveryHeader].ToString()),
                context.Connection.RemoteIpAddress);
            throw;
        }
        var body = signed.Bytes;
        var eventName = request.Headers[EventHeader].ToString();
        if (eventName.Length is 0 or > 100 || !eventName.All(c => char.IsAsciiLetterLower(c) || c == '_'))
        {
            throw ApiError.BadRequest(EventHeader, $"the {EventHeader} header is missing or malformed").ToException();
        }
        var deliveryId = request.Headers[DeliveryHeader].ToString();
        if (eventName == "ping")
        {
            metrics.CountWebhookReceived("ping");
            return ApiRoutes.Json(new WebhookReceipt(deliveryId, "pong", false));
        }
        if (!IsDeliveryId(deliveryId))
        {
            throw ApiError.BadRequest(DeliveryHeader, $"the {DeliveryHeader} header is missing or malformed").ToException();
        }
        if (request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiError(StatusCodes.Status415UnsupportedMediaType, GatewayErrorCodes.UnsupportedMediaType,
                "set the webhook's content type to application/json", "content-type").ToException();
        }
        var (action, repository) = Summary(body);
        var accepted = settings.AcceptsRepository(repository);
        var recorded = await store.RecordAsync(new NewDelivery(deliveryId, eventName, action, repository, body,
            accepted ? DeliveryStatus.Received : DeliveryStatus.Ignored,
            accepted ? null : $"repository '{repository}' is not configured", signed.Sha256), context.RequestAborted);
        if (recorded.DuplicateOf is { } original)
        {
            loggers.CreateLogger(typeof(WebhookEndpoints)).LogInformation(
                "GitHub delivery {DeliveryId} repeats the payload of delivery {OriginalId}: counted as a redelivery of it", deliveryId, original);
        }
        if (recorded.Kind != RecordKind.Duplicate && recorded.Status == DeliveryStatus.Received)
        {
            signal.Notify();
        }
        metrics.CountWebhookReceived(recorded.Kind == RecordKind.New && !accepted ? "ignored" : recorded.Kind.ToString().ToLowerInvariant());
        return ApiRoutes.Json(new WebhookReceipt(deliveryId, recorded.Status, recorded.Kind == RecordKind.Duplicate), StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> List(string? status, string? limit, HttpContext context, WebhookDeliveryStore store)
    {
        if (status is not null && !DeliveryStatus.All.Contains(status))
        {
            throw ApiError.BadRequest("status", $"status is one of {string.Join(", ", DeliveryStatus.All)}").ToException();
        }
        var size = DefaultLimit;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out size) || size is < 1 or > MaxLimit))
        {
            throw ApiError.BadRequest("limit", $"limit is a whole number from 1 to {MaxLimit}").ToException();
        }
        var rows = await store.ListAsync(status, size, context.RequestAborted);
        return ApiRoutes.Json(new DeliveryList(rows.Select(DeliveryView.From).ToList()));
    }

    private static async Task<IResult> Get(string deliveryId, HttpContext context, WebhookDeliveryStore store) =>
        ApiRoutes.Json(DeliveryView.From(await store.GetAsync(DeliveryIdFrom(deliveryId), context.RequestAborted)
            ?? throw ApiError.NotFound($"delivery '{deliveryId}' is not known (or past its retention)").ToException()));

    private static async Task<IResult> Retry(string deliveryId, HttpContext context, WebhookDeliveryStore store, DeliverySignal signal)
    {
        DeliveryIdFrom(deliveryId);
        var row = await store.RetryAsync(deliveryId, context.RequestAborted)
            ?? throw ApiError.NotFound($"delivery '{deliveryId}' is not known (or past its retention)").ToException();
        if (row.Status == DeliveryStatus.Processed)
        {
            throw new ApiError(StatusCodes.Status409Conflict, ErrorCodes.Conflict,
                $"delivery '{deliveryId}' was processed; it is never applied twice").ToException();
        }
        signal.Notify();
        return ApiRoutes.Json(DeliveryView.From(row), StatusCodes.Status202Accepted);
    }

    /// <summary>The action and repository for the delivery log; the processor reads the rest. Not JSON: 400.</summary>
    private static (string? Action, string? Repository) Summary(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw ApiError.BadRequest("body", "the payload is not a JSON object").ToException();
            }
            var action = root.TryGetProperty("action", out var a) && a.ValueKind == JsonValueKind.String ? Text(a, "action") : null;
            var repository = root.TryGetProperty("repository", out var r) && r.ValueKind == JsonValueKind.Object &&
                r.TryGetProperty("full_name", out var n) && n.ValueKind == JsonValueKind.String ? Text(n, "repository.full_name") : null;
            return (Truncate(action), Truncate(repository));
        }
        catch (JsonException)
        {
            throw ApiError.BadRequest("body", "the payload is not valid JSON").ToException();
        }
    }

    /// <summary>
    /// A string the delivery log stores as text and the admin view shows (the repository also becomes a claim key and a
    /// sandbox name): through <see cref="ApiInput"/>, and an escape that is no UTF-16 (a lone \ud800) is a 400 as well.
    /// </summary>
    private static string Text(JsonElement element, string field)
    {
        string value;
        try
        {
            value = element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw ApiError.BadRequest(field, $"'{field}' is not valid text (an escape that is no UTF-16)").ToException();
        }
        return ApiInput.Text(value, field)!;
    }

    private static string? Truncate(string? value) => value is { Length: > 200 } ? value[..200] : value;

    /// <summary>What GitHub sends as X-GitHub-Delivery (a GUID); the same rule for the admin view's path.</summary>
    private static bool IsDeliveryId(string value) =>
        value.Length is > 0 and <= 100 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static string DeliveryIdFrom(string routeValue) =>
        IsDeliveryId(routeValue)
            ? routeValue
            : throw ApiError.BadRequest("delivery_id", "a delivery id is 1-100 characters of A-Z, a-z, 0-9, '-', '_' and '.'").ToException();
}
