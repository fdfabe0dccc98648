using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;

namespace SandboxBroker.Samples.OrleansClient;

/// <summary>
/// An internal service acting for one tenant: joins the cluster as an Orleans client through the membership table in
/// the broker's Postgres, then acquires a claim key's sandbox, acquires it again (a repeat: the same sandbox), and
/// releases it. Exit status: 0 done, 1 the broker refused (its error code is printed), 2 no cluster reached.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        // The broker's own keys and variables: BROKER_POSTGRES, Orleans:ClusterId / Orleans:ServiceId (or BROKER_Orleans__ClusterId).
        builder.Configuration.AddEnvironmentVariables("BROKER_");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // A failed start is reported below in one line; the host's own report would repeat it with a stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        var options = SampleOptions.Bind(builder.Configuration);

        builder.UseOrleansClient(client =>
        {
            // Both must equal the silos' (and the gateway's): they select the cluster in the membership table.
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = options.Postgres;
            });
            // The calls carry this service's trace context, so the broker's spans join its traces.
            client.AddActivityPropagation();
        });

        using var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"orleans-client: cannot reach the cluster '{options.ClusterId}' through Postgres: {e.Message}");
            return 2;
        }

        try
        {
            var claims = host.Services.GetRequiredService<IClusterClient>();
            await new LeaseWalkthrough(claims, options, Console.Out).RunAsync();
            return 0;
        }
        catch (BrokerException e)
        {
            await Console.Error.WriteLineAsync($"orleans-client: {e.Code}: {e.Message}");
            return 1;
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
