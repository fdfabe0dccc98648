using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using SandboxBroker.Gateway.Api;

namespace SandboxBroker.Gateway.Auth;

/// <summary><c>Authorization: Bearer &lt;token&gt;</c>. Missing or wrong tokens answer 401, a missing scope 403, both in the API's error shape.</summary>
public sealed class BearerTokenHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TokenValidator validator)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            return AuthenticateResult.Fail("the Authorization header must be 'Bearer <token>'");
        }
        var caller = await validator.ValidateAsync(header[7..].Trim(), Context.RequestAborted);
        return caller is null
            ? AuthenticateResult.Fail("the token is not valid (unknown, revoked or expired)")
            : AuthenticateResult.Success(new AuthenticationTicket(caller.ToPrincipal(SchemeName), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        var message = result.Failure?.Message ?? "this endpoint needs 'Authorization: Bearer <token>'";
        Response.Headers.WWWAuthenticate = "Bearer";
        await new ApiError(StatusCodes.Status401Unauthorized, GatewayErrorCodes.Unauthenticated, message).WriteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ApiError.Forbidden("this endpoint needs the 'admin' scope").WriteAsync(Context);
}

/// <summary>The two scopes as authorization policies.</summary>
public static class Policies
{
    public const string Claims = "claims";
    public const string Admin = "admin";
}
