using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace SandboxBroker.Client;

public static class ServiceCollectionExtensions
{
    public const string HttpClientName = "SandboxBroker";

    /// <summary>
    /// Registers <see cref="SandboxBrokerClient"/> over a named HttpClient from IHttpClientFactory, behind the
    /// <see cref="BrokerResilience"/> pipeline. Returns the HttpClient builder for further handlers.
    /// </summary>
    public static IHttpClientBuilder AddSandboxBrokerClient(this IServiceCollection services, Action<SandboxBrokerClientOptions> configure)
    {
        services.Configure(configure);
        services.AddTransient(sp => new SandboxBrokerClient(sp.GetRequiredService<IHttpClientFactory>().CreateClient(HttpClientName)));
        var builder = services.AddHttpClient(HttpClientName, (sp, http) =>
            SandboxBrokerClient.Prepare(http, sp.GetRequiredService<IOptions<SandboxBrokerClientOptions>>().Value));
        builder.AddResilienceHandler("sandboxbroker", (pipeline, context) =>
            BrokerResilience.Configure(pipeline, context.ServiceProvider.GetRequiredService<IOptions<SandboxBrokerClientOptions>>().Value));
        return builder;
    }
}
