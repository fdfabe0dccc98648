using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace SandboxBroker.Gateway.Api;

/// <summary>The OpenAPI document at /v1/openapi.json: every /v1 endpoint, the bearer scheme, the error shape.</summary>
public static class OpenApi
{
    public static IServiceCollection AddBrokerOpenApi(this IServiceCollection services) =>
        services.AddOpenApi("v1", o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "SandboxBroker API",
                    Version = "v1",
                    Description = "Exactly one sandbox per claim key. Errors: {\"error\":{\"code\",\"message\",\"request_id\"}}; every response carries X-Request-ID.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API token: BROKER_ADMIN_TOKEN, or one minted by POST /v1/admin/tokens.",
                };
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] }];
                return Task.CompletedTask;
            });
            // Anonymous endpoints (the GitHub webhook, signed by HMAC instead) need no bearer token.
            o.AddOperationTransformer((operation, context, _) =>
            {
                if (context.Description.ActionDescriptor.EndpointMetadata.OfType<Microsoft.AspNetCore.Authorization.IAllowAnonymous>().Any())
                {
                    operation.Security = [];
                }
                return Task.CompletedTask;
            });
        });
}
