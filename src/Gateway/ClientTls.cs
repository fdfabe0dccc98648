using Orleans.Connections.Security;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway;

/// <summary>The Orleans client's half of the cluster's TLS (<c>Orleans:Tls</c>): presents the configured certificate and trusts only silos that do the same.</summary>
public static class ClientTls
{
    public static IClientBuilder UseClusterTls(this IClientBuilder client, IConfiguration configuration)
    {
        if (ClusterCertificates.Load(configuration) is not { } tls)
        {
            return client;
        }
        return client.UseTls(tls.Certificate, o =>
        {
            o.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.RemoteCertificateValidation = (certificate, _, _) => tls.IsTrusted(certificate);
            o.OnAuthenticateAsClient = (_, ssl) => ssl.TargetHost = tls.TargetHost;
        });
    }
}
