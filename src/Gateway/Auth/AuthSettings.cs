namespace SandboxBroker.Gateway.Auth;

/// <summary>Authentication settings ("Auth" section). BROKER_ADMIN_TOKEN in the environment is the first admin token.</summary>
public sealed class AuthSettings
{
    public const string Section = "Auth";

    /// <summary>A token accepted with tenant "admin" and every scope, for a first start; mint real tokens with it.</summary>
    public string? AdminToken { get; set; }

    /// <summary>The shortest admin token the gateway starts with.</summary>
    public const int MinAdminTokenLength = 32;

    /// <summary>How long a validated token is trusted before Postgres is asked again (also how long a revocation takes to reach other gateways).</summary>
    public TimeSpan CacheTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a token Postgres did not know is answered 401 without asking again. A token is used only after it was
    /// minted, so remembering a miss delays no real caller; it makes a repeated wrong token free.
    /// </summary>
    public TimeSpan MissCacheTtl { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most tokens each of the two caches (validated, unknown) holds; a full cache is emptied.</summary>
    public int MaxCachedTokens { get; set; } = 10_000;

    public static AuthSettings Bind(IConfiguration configuration)
    {
        var settings = configuration.GetSection(Section).Get<AuthSettings>() ?? new AuthSettings();
        // BROKER_ADMIN_TOKEN arrives as "ADMIN_TOKEN" through the BROKER_ environment prefix.
        settings.AdminToken ??= configuration["ADMIN_TOKEN"];
        if (string.IsNullOrWhiteSpace(settings.AdminToken))
        {
            settings.AdminToken = null;
        }
        else if (settings.AdminToken.Length < MinAdminTokenLength)
        {
            // Every scope, compared without a lookup: it must be as hard to guess as a minted token.
            throw new SandboxBroker.Storage.StartupException(
                $"the admin token (BROKER_ADMIN_TOKEN or Auth:AdminToken) must be at least {MinAdminTokenLength} characters; " +
                $"it has {settings.AdminToken.Length} (make one with: openssl rand -hex 32)");
        }
        return settings;
    }
}

/// <summary>Per-tenant request rate ("RateLimit" section): a token bucket per tenant; excess requests get 429.</summary>
public sealed class RateLimitSettings
{
    public const string Section = "RateLimit";

    public bool Enabled { get; set; } = true;

    /// <summary>Sustained requests per second per tenant.</summary>
    public int PermitsPerSecond { get; set; } = 2000;

    /// <summary>Requests a tenant may make at once above the sustained rate.</summary>
    public int Burst { get; set; } = 4000;
}
