using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Prometheus;
using Scalar.AspNetCore;
using SandboxBroker.Gateway.Api;
using SandboxBroker.Gateway.Auth;
using SandboxBroker.Gateway.Webhooks;
using SandboxBroker.Silo;
using SandboxBroker.Silo.Metrics;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway;

/// <summary>
/// The gateway: an ASP.NET Core app that is an Orleans client. It finds silos through the membership table
/// in Postgres and reconnects by itself as silos come and go. With <see cref="GatewaySettings.HostsSilo"/> it is a silo
/// itself instead (one process). `tokens …` as first argument manages API tokens instead.
/// </summary>
public static class Program
{
    /// <summary>The largest request body outside the webhook endpoint (which takes up to WebhookSettings.MaxPayloadBytes, 1 MB).</summary>
    public const long MaxBodyBytes = 256 * 1024;

    public static async Task<int> Main(string[] args)
    {
        try
        {
            if (args is ["tokens", .. var rest])
            {
                return await TokenCommands.RunAsync(rest, LoadConfiguration(args));
            }
            var app = Build(args);
            await app.RunAsync();
            return 0;
        }
        catch (StartupException e)
        {
            await Console.Error.WriteLineAsync($"sandboxbroker-gateway: {e.Message}");
            return 2;
        }
    }

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? customize = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Configuration.AddEnvironmentVariables("BROKER_");
        var configuration = builder.Configuration;
        var settings = configuration.GetSection(GatewaySettings.Section).Get<GatewaySettings>() ?? new GatewaySettings();
        var connectionString = PostgresConnection.Tuned(PostgresOptions.Resolve(configuration));
        if (settings.HostsSilo)
        {
            SiloHost.AddSiloDefaults(builder.Configuration);
            SiloHost.CheckPorts(configuration);
        }
        if (settings.Urls is { Length: > 0 } urls)
        {
            EnsureUrlsFree(urls);
            builder.WebHost.UseUrls(urls);
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = MaxBodyBytes;
            // Twice the broker's own limits, which ApiMiddleware answers in the error shape: Kestrel answers a request
            // over its limits itself, with an empty body, so its limits are only the backstop.
            k.Limits.MaxRequestLineSize = 2 * ApiMiddleware.MaxRequestTargetLength;
            k.Limits.MaxRequestHeadersTotalSize = 2 * ApiMiddleware.MaxRequestHeadersBytes;
            k.Limits.MaxRequestHeaderCount = 2 * ApiMiddleware.MaxRequestHeaderCount;
        });
        // A silo hands its grains to the others as it stops, which takes longer than a client's goodbye.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(settings.HostsSilo ? 30 : 15));
        // Built now, so a malformed connection string stops the start with one line. A hosted silo registers its own, and the
        // API shares it: one pool of connections in the process.
        var dataSource = PostgresConnection.CreateDataSource(connectionString, "sandboxbroker-gateway");
        if (settings.HostsSilo)
        {
            dataSource.Dispose();
        }
        else
        {
            builder.Services.AddSingleton(dataSource);
        }
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ApiTokenStore>();
        builder.Services.AddSingleton<BrokerIndex>();
        if (settings.MaxAcquiresInFlight < 0)
        {
            throw new InvalidOperationException($"Gateway:MaxAcquiresInFlight must be 0 (no limit) or more, not {settings.MaxAcquiresInFlight}");
        }
        if (settings.MinAcquiresInFlightPerTenant < 1)
        {
            throw new InvalidOperationException($"Gateway:MinAcquiresInFlightPerTenant must be 1 or more, not {settings.MinAcquiresInFlightPerTenant}");
        }
        if (settings.MaxRepeatsInFlight < 0)
        {
            throw new InvalidOperationException($"Gateway:MaxRepeatsInFlight must be 0 (no limit) or more, not {settings.MaxRepeatsInFlight}");
        }
        if (settings.MaxAcquiresQueued < 0)
        {
            throw new InvalidOperationException($"Gateway:MaxAcquiresQueued must be 0 (none waits) or more, not {settings.MaxAcquiresQueued}");
        }
        if (settings.AcquireQueueTimeout < TimeSpan.Zero || settings.AcquireQueueTimeout > TimeSpan.FromSeconds(10))
        {
            throw new InvalidOperationException(
                $"Gateway:AcquireQueueTimeout must be between 00:00:00 (none waits) and 00:00:10, not {settings.AcquireQueueTimeout}");
        }
        builder.Services.AddSingleton(sp => new AcquireAdmission(settings.MaxAcquiresInFlight, settings.MinAcquiresInFlightPerTenant,
            new RecentLeases(sp.GetRequiredService<TimeProvider>()), settings.MaxRepeatsInFlight,
            settings.MaxAcquiresQueued, settings.AcquireQueueTimeout, sp.GetRequiredService<TimeProvider>()));
        if (settings.HostsSilo)
        {
            // Added before the silo, so the schema is in place when the silo starts (hosted services start in order).
            builder.Services.AddHostedService(sp => new SchemaMigration(connectionString, sp.GetRequiredService<ILoggerFactory>()));
            SiloHost.AddSilo(builder, connectionString);
        }
        else
        {
            builder.UseOrleansClient(client => ClientConfiguration.Configure(client, configuration, connectionString));
        }
        builder.AddGatewayTelemetry();
        AddApi(builder.Services, configuration);
        customize?.Invoke(builder);

        var app = builder.Build();
        if (settings.HostsSilo)
        {
            // Ahead of the API's middleware: the dashboard has its own credential and pages, not the API's.
            SiloHost.UseDashboard(app);
        }
        UseApi(app, settings);
        return app;
    }

    private static void AddApi(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(AuthSettings.Bind(configuration)));
        services.Configure<RateLimitSettings>(configuration.GetSection(RateLimitSettings.Section));
        services.Configure<CompatSettings>(configuration.GetSection(CompatSettings.Section));
        services.ConfigureHttpJsonOptions(o => ApiJson.Configure(o.SerializerOptions));
        services.AddSingleton<TokenValidator>();
        services.AddSingleton<BrokerMetrics>();
        services.AddSingleton<LevelGauges>();
        services.AddAuthentication(BearerTokenHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerTokenHandler>(BearerTokenHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Claims, p => p.RequireClaim(Caller.ClaimNames.Scope, TokenScopes.Claims, TokenScopes.Admin))
            .AddPolicy(Policies.Admin, p => p.RequireClaim(Caller.ClaimNames.Scope, TokenScopes.Admin));
        services.AddTenantRateLimiter();
        services.AddAddressLimiter(configuration);
        services.AddSingleton<KnownPools>();
        services.AddSingleton<GrainReferences>();
        services.AddBrokerOpenApi();
        services.AddGitHubWebhooks(configuration);
    }

    private static void UseApi(WebApplication app, GatewaySettings settings)
    {
        var metrics = app.Services.GetRequiredService<BrokerMetrics>();
        var gauges = app.Services.GetRequiredService<LevelGauges>();
        metrics.Registry.AddBeforeCollectCallback(gauges.RefreshAsync);

        app.UseMiddleware<ApiMiddleware>();
        app.UseStatusCodePages(ApiMiddleware.WriteStatusCodePage);
        app.UseRouting();
        app.UseAddressLimiter();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        // After authorization (an anonymous caller learns nothing about the checks), before every endpoint.
        app.Use(ApiInput.CheckRequestAsync);

        app.MapGet("/healthz", () => Results.Ok(new { status = "ok" })).ExcludeFromDescription();
        app.MapGet("/readyz", Readiness.CheckAsync).ExcludeFromDescription();
        app.MapBrokerMetrics("/metrics", metrics.Registry, app.Configuration);
        if (settings.HostsSilo)
        {
            app.MapBrokerMetrics("/metrics/silo", app.Services.GetRequiredService<SiloMetricsEndpoint>().Registry, app.Configuration);
        }
        app.MapOpenApi("/v1/openapi.json");
        app.MapScalarApiReference("/v1/docs", o => o.WithOpenApiRoutePattern("/v1/openapi.json").WithTitle("SandboxBroker API"));

        app.MapClaimEndpoints();
        app.MapSandboxEndpoints();
        app.MapCompatEndpoints();
        app.MapPoolEndpoints();
        app.MapAdminEndpoints();
        app.MapTenantEndpoints();
        app.MapWebhookEndpoints();
    }

    /// <summary>Configuration as Build reads it, for the command-line tools.</summary>
    private static IConfiguration LoadConfiguration(string[] args) =>
        new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables("BROKER_")
            .Build();

    /// <summary>
    /// Checked before start: the Orleans client holds the host's start until it reaches a silo, so a busy port
    /// would otherwise surface only later.
    /// </summary>
    private static void EnsureUrlsFree(string urls)
    {
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !System.Net.IPAddress.TryParse(uri.Host, out var address))
            {
                continue; // host names and wildcards are left to Kestrel
            }
            StartupChecks.EnsurePortFree(address, uri.Port, "cannot listen: Gateway:Urls");
        }
    }
}
