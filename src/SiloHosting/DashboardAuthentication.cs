using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace SandboxBroker.Silo;

/// <summary>HTTP Basic authentication in front of /dashboard: the Orleans dashboard has none of its own.</summary>
public sealed class DashboardAuthentication
{
    private readonly RequestDelegate _next;
    private readonly byte[] _expected;

    public DashboardAuthentication(RequestDelegate next, IOptions<DashboardSettings> settings, ILogger<DashboardAuthentication> logger)
    {
        _next = next;
        var password = settings.Value.Password;
        if (string.IsNullOrEmpty(password))
        {
            password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            logger.LogWarning("No Dashboard:Password configured; generated one for this run. Dashboard user {User}, password {Password}",
                settings.Value.Username, password);
        }
        _expected = SHA256.HashData(Encoding.UTF8.GetBytes($"{settings.Value.Username}:{password}"));
    }

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/dashboard") || Authorized(context.Request))
        {
            await _next(context);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Basic realm=\"SandboxBroker dashboard\", charset=\"UTF-8\"";
    }

    private bool Authorized(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        string credential;
        try
        {
            credential = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
        }
        catch (FormatException)
        {
            return false;
        }
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(credential)), _expected);
    }
}
