using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;

namespace SandboxBroker.Storage;

/// <summary>
/// TLS on the cluster's ports ("Orleans:Tls" section), off by default (one machine talks over loopback). When on, silo-to-silo
/// and client-to-silo connections use TLS 1.2/1.3 with mutual authentication: every silo and every gateway presents
/// <see cref="CertificatePath"/> and accepts the other side only if its certificate was issued by <see cref="TrustedCaPath"/>,
/// or, with no CA set, is the very same certificate (one certificate shared by the cluster's nodes).
/// </summary>
public sealed class ClusterTlsSettings
{
    public const string Section = "Orleans:Tls";

    public bool Enabled { get; set; }

    /// <summary>This node's certificate with its private key: PKCS#12 (.pfx/.p12), or PEM with <see cref="KeyPath"/>.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PKCS#12 file's password, or the PEM key's when it is encrypted.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>The PEM private key of a PEM <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary>A PEM CA certificate: peers presenting a certificate it issued are trusted. Unset: only peers presenting this node's own certificate.</summary>
    public string? TrustedCaPath { get; set; }
}

/// <summary>The loaded certificate and the rule that decides which peers are trusted; null when TLS is off.</summary>
public sealed class ClusterCertificates
{
    private readonly X509Certificate2? _ca;

    private ClusterCertificates(X509Certificate2 certificate, X509Certificate2? ca)
    {
        Certificate = certificate;
        _ca = ca;
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The name a connecting side asks for (SNI); the trust decision is <see cref="IsTrusted"/>, not the name.</summary>
    public string TargetHost => Certificate.GetNameInfo(X509NameType.DnsName, forIssuer: false) is { Length: > 0 } name ? name : "sandboxbroker";

    /// <summary>A peer is trusted when the CA issued its certificate (chain built against that CA alone), or it is our own certificate.</summary>
    public bool IsTrusted(X509Certificate2? peer)
    {
        if (peer is null)
        {
            return false;
        }
        if (_ca is null)
        {
            return peer.RawData.AsSpan().SequenceEqual(Certificate.RawData); // the same bytes: the same validity as our own
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // a private CA publishes no revocation list
        return chain.Build(peer);
    }

    /// <summary>The configured certificates, or null when <c>Orleans:Tls:Enabled</c> is not true; a clear StartupException when they cannot be loaded.</summary>
    public static ClusterCertificates? Load(IConfiguration configuration)
    {
        var settings = configuration.GetSection(ClusterTlsSettings.Section).Get<ClusterTlsSettings>() ?? new ClusterTlsSettings();
        if (!settings.Enabled)
        {
            return null;
        }
        if (string.IsNullOrWhiteSpace(settings.CertificatePath))
        {
            throw new StartupException($"{ClusterTlsSettings.Section}:Enabled is true but {ClusterTlsSettings.Section}:CertificatePath is not set");
        }
        try
        {
            var certificate = settings.KeyPath is { Length: > 0 } key
                ? string.IsNullOrEmpty(settings.CertificatePassword)
                    ? X509Certificate2.CreateFromPemFile(settings.CertificatePath, key)
                    : X509Certificate2.CreateFromEncryptedPemFile(settings.CertificatePath, settings.CertificatePassword, key)
                : X509CertificateLoader.LoadPkcs12FromFile(settings.CertificatePath, settings.CertificatePassword);
            if (!certificate.HasPrivateKey)
            {
                throw new StartupException($"{ClusterTlsSettings.Section}:CertificatePath '{settings.CertificatePath}' holds no private key");
            }
            var ca = settings.TrustedCaPath is { Length: > 0 } caPath ? X509CertificateLoader.LoadCertificateFromFile(caPath) : null;
            return new ClusterCertificates(certificate, ca);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"cannot load the cluster TLS certificate ({ClusterTlsSettings.Section}): {e.Message}");
        }
    }
}
