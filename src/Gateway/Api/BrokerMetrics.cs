using Microsoft.AspNetCore.Routing;
using Prometheus;

namespace SandboxBroker.Gateway.Api;

/// <summary>
/// The gateway's Prometheus metrics, in a registry of its own (not the library's static one), served at /metrics.
/// Pool and sandbox levels are read when scraped, at most every few seconds.
/// </summary>
public sealed class BrokerMetrics
{
    private readonly Counter _requests;
    private readonly Histogram _requestDuration;
    private readonly Histogram _acquireDuration;
    private readonly Counter _errors;
    private readonly Counter _releases;
    private readonly Counter _webhookReceived;
    private readonly Counter _webhookDone;
    private readonly Histogram _webhookDelay;

    public BrokerMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        _requests = factory.CreateCounter("broker_http_requests_total", "HTTP requests by route, method and status.", ["route", "method", "status"]);
        _requestDuration = factory.CreateHistogram("broker_http_request_duration_seconds", "HTTP request duration by route.", ["route"],
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 15) });
        _acquireDuration = factory.CreateHistogram("broker_acquire_duration_seconds", "Acquire latency by outcome (warm, cold, repeat).", ["outcome"],
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        _errors = factory.CreateCounter("broker_errors_total", "Error responses by error code.", ["code"]);
        _releases = factory.CreateCounter("broker_releases_total", "Leases released through the API.", ["source"]);
        _webhookReceived = factory.CreateCounter("broker_webhook_received_total",
            "GitHub webhook requests by result (new, duplicate, requeued, ignored, ping, unauthorized).", ["result"]);
        _webhookDone = factory.CreateCounter("broker_webhook_deliveries_total", "Webhook deliveries finished by status (processed, ignored, failed) and retries.", ["status"]);
        _webhookDelay = factory.CreateHistogram("broker_webhook_delivery_delay_seconds", "From a delivery's receipt to its processing.", [],
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        PoolSandboxes = factory.CreateGauge("broker_pool_sandboxes", "Sandboxes per pool by level (ready, provisioning, leased, deleting).", ["pool", "level"]);
        Sandboxes = factory.CreateGauge("broker_sandboxes", "Sandboxes by status in the index (deleted counts completed deletions).", ["status"]);
    }

    public CollectorRegistry Registry { get; }

    public Gauge PoolSandboxes { get; }

    public Gauge Sandboxes { get; }

    public void ObserveAcquire(AcquireOutcome outcome, TimeSpan elapsed) =>
        _acquireDuration.WithLabels(outcome.ToString().ToLowerInvariant()).Observe(elapsed.TotalSeconds);

    public void CountRelease(string source) => _releases.WithLabels(source).Inc();

    public void CountWebhookReceived(string result) => _webhookReceived.WithLabels(result).Inc();

    public void CountWebhookDone(string status, TimeSpan? delay = null)
    {
        _webhookDone.WithLabels(status).Inc();
        if (delay is { } d)
        {
            _webhookDelay.Observe(Math.Max(0, d.TotalSeconds));
        }
    }

    public void ObserveRequest(HttpContext context, TimeSpan elapsed)
    {
        var route = context.GetEndpoint() is RouteEndpoint endpoint ? RouteOf(endpoint) : "unmatched";
        var status = context.Response.StatusCode;
        _requests.WithLabels(route, MethodLabel(context.Request.Method), status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
        _requestDuration.WithLabels(route).Observe(elapsed.TotalSeconds);
        if (status >= 400 && context.Items[ErrorCodeItem] is string code)
        {
            _errors.WithLabels(code).Inc();
        }
    }

    /// <summary>The methods the API answers, as themselves; any other (a made-up verb is a valid HTTP method) is "other", so one series each at most.</summary>
    public static string MethodLabel(string method) => method switch
    {
        "GET" or "HEAD" or "POST" or "PUT" or "DELETE" or "PATCH" or "OPTIONS" => method,
        _ => "other",
    };

    /// <summary>The route template, as written (a group's prefix and the endpoint's part, without a trailing '/').</summary>
    public static string RouteOf(RouteEndpoint endpoint) =>
        endpoint.RoutePattern.RawText is { Length: > 1 } raw ? raw.TrimEnd('/') : endpoint.RoutePattern.RawText ?? "unknown";

    /// <summary>Where an error response leaves its code for the request counter.</summary>
    public const string ErrorCodeItem = "broker.error_code";
}
