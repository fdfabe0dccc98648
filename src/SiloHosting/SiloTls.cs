using Orleans.Connections.Security;
using SandboxBroker.Storage;

namespace SandboxBroker.Silo;

/// <summary>
/// TLS with mutual authentication on the silo port (silo-to-silo, both directions) and the gateway port (clients), when
/// <c>Orleans:Tls:Enabled</c>: a peer without a trusted certificate, or speaking plain text, is refused in the handshake.
/// </summary>
public static class SiloTls
{
    public static ISiloBuilder UseClusterTls(this ISiloBuilder silo, IConfiguration configuration)
    {
        if (ClusterCertificates.Load(configuration) is not { } tls)
        {
            return silo;
        }
        return silo.UseTls(tls.Certificate, o =>
        {
            o.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.RemoteCertificateValidation = (certificate, _, _) => tls.IsTrusted(certificate);
            o.OnAuthenticateAsClient = (_, ssl) => ssl.TargetHost = tls.TargetHost;
        });
    }
}
