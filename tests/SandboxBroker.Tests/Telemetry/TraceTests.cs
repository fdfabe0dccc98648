using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using SandboxBroker.Gateway;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Telemetry;

/// <summary>
/// The gateway's own OpenTelemetry pipeline (as configured in production, with an in-memory exporter in place of OTLP)
/// follows one acquire from the HTTP request through the Orleans grain calls into the SQL that stored the lease.
/// The silo runs in this process, so the gateway's listener sees the silo's spans too; the trace id ties them together
/// only if the context crossed the grain call and the group-commit queue.
/// </summary>
public sealed class TraceTests
{
    [Fact]
    public async Task One_acquire_is_one_trace_from_the_gateway_request_through_the_grains_to_the_sql()
    {
        await using var broker = await BrokerCluster.StartAsync(silos: 1);
        var spans = new ExportedSpans();
        await using var gateway = await BrokerGateway.StartAsync(broker, new Dictionary<string, string> { ["Telemetry:Traces"] = "true" },
            builder => builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(spans)));
        var client = gateway.Client(await gateway.MintTokenAsync("acme", "claims"));
        var key = $"github:octo/trace#{Guid.NewGuid():N}";

        using var response = await client.PutAsync($"/v1/claims/{ApiAssert.Key(key)}", ApiAssert.JsonBody(new { ttl_seconds = 600 }));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var requestId = response.Headers.GetValues("X-Request-ID").Single();

        // The server span ends just after the response is written: wait for it.
        Activity? request = null;
        await Eventually.TrueAsync(() =>
        {
            request = Snapshot(spans).SingleOrDefault(s => s.Kind == ActivityKind.Server && (string?)s.GetTagItem(GatewayTelemetry.RequestIdTag) == requestId);
            return Task.FromResult(request is not null);
        }, "the gateway's request span is exported");
        Assert.Equal(key, request!.GetTagItem(GatewayTelemetry.ClaimKeyTag));

        var trace = Snapshot(spans).Where(s => s.TraceId == request.TraceId).ToList();
        var description = string.Join("\n", trace.Select(s => $"{s.Source.Name} {s.Kind} {s.DisplayName} "
            + string.Join(",", s.TagObjects.Select(t => $"{t.Key}={t.Value}"))));
        // The gateway's call to the claim grain, and the grain's side of it, carrying the claim key.
        Assert.True(trace.Any(s => s.Source.Name == "Microsoft.Orleans.Application" && s.Kind == ActivityKind.Client && IsAcquire(s)),
            $"no client span of IClaimGrain.Acquire in the trace:\n{description}");
        var grainCall = trace.SingleOrDefault(s => s.Source.Name == "Microsoft.Orleans.Application" && s.Kind == ActivityKind.Server && IsAcquire(s));
        Assert.True(grainCall is not null, $"no server span of IClaimGrain.Acquire in the trace:\n{description}");
        Assert.Equal(key, grainCall.GetTagItem("sandboxbroker.claim_key"));
        // The group-committed write of the lease, and the SQL it ran, in the same trace.
        Assert.True(trace.Any(s => s.Source.Name == "SandboxBroker.Storage"), $"no grain-state batch in the trace:\n{description}");
        Assert.True(trace.Any(s => s.Source.Name == "Npgsql"), $"no SQL command in the trace:\n{description}");
    }

    private static bool IsAcquire(Activity span) => (string?)span.GetTagItem("rpc.method") == "SandboxBroker.IClaimGrain/Acquire";

    private static List<Activity> Snapshot(ExportedSpans spans) => spans.Snapshot();
}
