using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace SandboxBroker.Tests.Api;

/// <summary>The OpenAPI document is valid and describes every /v1 endpoint the gateway serves.</summary>
[Collection(ApiCollection.Name)]
public sealed class OpenApiTests(ApiFixture fixture)
{
    [Fact]
    public async Task The_document_validates_and_lists_every_endpoint()
    {
        await using var stream = await fixture.Gateway.Anonymous().GetStreamAsync("/v1/openapi.json");
        var (document, diagnostic) = await OpenApiDocument.LoadAsync(stream, "json", new OpenApiReaderSettings());
        Assert.NotNull(document);
        Assert.True(diagnostic!.Errors.Count == 0, string.Join("\n", diagnostic.Errors.Select(e => $"{e.Pointer}: {e.Message}")));
        var invalid = document.Validate(ValidationRuleSet.GetDefaultRuleSet())?.ToList() ?? [];
        Assert.True(invalid.Count == 0, string.Join("\n", invalid.Select(e => $"{e.Pointer}: {e.Message}")));

        var documented = document.Paths.SelectMany(p => p.Value.Operations!.Keys.Select(m => $"{m.Method.ToUpperInvariant()} {p.Key}")).ToHashSet();
        var served = fixture.Gateway.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/v1/", StringComparison.Ordinal) && e.RoutePattern.RawText != "/v1/openapi.json" && !e.RoutePattern.RawText.StartsWith("/v1/docs", StringComparison.Ordinal))
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => $"{m} {SandboxBroker.Gateway.Api.BrokerMetrics.RouteOf(e)}"))
            .ToHashSet();
        Assert.NotEmpty(served);
        Assert.True(!served.Except(documented).Any(), "undocumented: " + string.Join(", ", served.Except(documented)));
        Assert.Contains("PUT /v1/claims/{key}", documented);
        Assert.Contains("POST /v1/allocate", documented);
        Assert.Contains("PUT /v1/admin/tenants/{tenant}/quota", documented);
        Assert.Contains(document.Paths["/v1/claims/{key}"].Operations![System.Net.Http.HttpMethod.Get].Parameters!, p => p.Name == "tenant");
        Assert.True(document.Components!.SecuritySchemes!.ContainsKey("bearer"));
        var webhook = document.Paths["/v1/webhooks/github"].Operations![System.Net.Http.HttpMethod.Post];
        Assert.NotNull(webhook.Security);
        Assert.Empty(webhook.Security); // signed by HMAC, not by a bearer token
        Assert.Contains(document.Components.Schemas!.Keys, k => k == "ErrorEnvelope");

        using var docs = await fixture.Gateway.Anonymous().GetAsync("/v1/docs/");
        Assert.Equal(System.Net.HttpStatusCode.OK, docs.StatusCode);
        Assert.Contains("v1/openapi.json", await docs.Content.ReadAsStringAsync()); // resolved against the app root by the page
    }
}
