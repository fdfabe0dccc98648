using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using SandboxBroker.Gateway;
using SandboxBroker.Silo;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests;

/// <summary>With Orleans:Tls on, a silo talks only to peers presenting the cluster's certificate: plain text and strangers are refused.</summary>
public sealed class ClusterTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sandboxbroker-tls-").FullName;

    [Fact]
    public async Task A_silo_with_TLS_refuses_plain_text_and_untrusted_clients_and_accepts_the_configured_certificate()
    {
        const string Password = "test-pfx-password";
        var cluster = WritePfx("cluster", Password);
        var stranger = WritePfx("stranger", Password);
        var clusterPublic = Path.Combine(_dir, "cluster.pem");
        await File.WriteAllTextAsync(clusterPublic, X509CertificateLoader.LoadPkcs12FromFile(cluster, Password).ExportCertificatePem());

        var tls = new Dictionary<string, string?>
        {
            ["Orleans:Tls:Enabled"] = "true",
            ["Orleans:Tls:CertificatePath"] = cluster,
            ["Orleans:Tls:CertificatePassword"] = Password,
        };
        // The test cluster's own client connects with the same settings: the cluster deploying at all shows the configured certificate works.
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings: tls);

        Assert.True(await ConnectsAsync(broker, tls), "a client with the cluster's certificate connects");
        Assert.False(await ConnectsAsync(broker, new Dictionary<string, string?>()), "a plain-text client is refused");
        // Trusting the silo through a CA (the self-signed cluster certificate is its own) works: so when the stranger below,
        // which trusts the silo the same way, is refused, the refusal is the silo's, for the stranger's certificate.
        Assert.True(await ConnectsAsync(broker, new Dictionary<string, string?>(tls) { ["Orleans:Tls:TrustedCaPath"] = clusterPublic }),
            "a client trusting the cluster certificate as its CA connects");
        Assert.False(await ConnectsAsync(broker, new Dictionary<string, string?>
        {
            ["Orleans:Tls:Enabled"] = "true",
            ["Orleans:Tls:CertificatePath"] = stranger,
            ["Orleans:Tls:CertificatePassword"] = Password,
            ["Orleans:Tls:TrustedCaPath"] = clusterPublic,
        }), "a client with an untrusted certificate is refused");
    }

    /// <summary>True when an Orleans client with these settings connects to the cluster and a grain call answers.</summary>
    private static async Task<bool> ConnectsAsync(BrokerCluster broker, IDictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var host = new HostBuilder().UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = broker.Cluster.Options.ClusterId;
                o.ServiceId = broker.Cluster.Options.ServiceId;
            });
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = SiloConfiguration.Invariant;
                o.ConnectionString = broker.Database.ConnectionString;
            });
            client.UseClusterTls(configuration);
        }).Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a backstop only: refusals fail at once
        try
        {
            await host.StartAsync(timeout.Token);
            var pools = await host.Services.GetRequiredService<IClusterClient>().GetGrain<IPoolDirectoryGrain>(IPoolDirectoryGrain.Key).List()
                .WaitAsync(timeout.Token);
            return pools.Count > 0;
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            return false;
        }
        finally
        {
            try
            {
                await host.StopAsync(CancellationToken.None);
            }
            catch (Exception)
            {
                // A client that never connected may fail to stop; nothing to clean up.
            }
        }
    }

    /// <summary>A self-signed certificate for server and client authentication, as a password-protected PKCS#12 file.</summary>
    private string WritePfx(string name, string password)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}.sandboxbroker.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, false, 0, critical: true));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName($"{name}.sandboxbroker.test");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var path = Path.Combine(_dir, name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, password));
        return path;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
