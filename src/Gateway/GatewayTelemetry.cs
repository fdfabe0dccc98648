using System.Diagnostics;
using OpenTelemetry.Instrumentation.AspNetCore;
using SandboxBroker.Gateway.Api;
using SandboxBroker.ServiceDefaults;

namespace SandboxBroker.Gateway;

/// <summary>
/// The shared OpenTelemetry pipeline, plus what makes a gateway span findable: the request id (X-Request-ID, the one in
/// every error body) and the claim key the request is about (from the path, or X-Track-ID for lab clients).
/// </summary>
public static class GatewayTelemetry
{
    public const string RequestIdTag = "sandboxbroker.request_id";
    public const string ClaimKeyTag = "sandboxbroker.claim_key";

    public static WebApplicationBuilder AddGatewayTelemetry(this WebApplicationBuilder builder)
    {
        builder.AddBrokerTelemetry("sandboxbroker-gateway");
        builder.Services.Configure<AspNetCoreTraceInstrumentationOptions>(o => o.EnrichWithHttpResponse = Enrich);
        return builder;
    }

    /// <summary>At the response, when ApiMiddleware has settled the request id; only a valid claim key is recorded.</summary>
    private static void Enrich(Activity activity, HttpResponse response)
    {
        var context = response.HttpContext;
        activity.SetTag(RequestIdTag, context.TraceIdentifier);
        var key = context.GetRouteValue("key") is string routeValue ? Uri.UnescapeDataString(routeValue)
            : context.Request.Headers[CompatEndpoints.TrackHeader].ToString();
        if (ClaimKey.IsValid(key, out _))
        {
            activity.SetTag(ClaimKeyTag, key);
        }
    }
}
