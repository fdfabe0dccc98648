using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;
using SandboxBroker.Storage;

namespace SandboxBroker.Grains;

/// <summary>
/// Connection details a provider answers (a postgres-schema password, an E2B access token) are sealed before they go into
/// grain state, so a copy of the database (a backup, a replica, a read-only role) does not hand out live sandboxes:
/// AES-256-GCM under <c>Broker:SecretsKey</c>, each value bound to its sandbox and name (a sealed value moved to
/// another row does not open). The lease is answered with the opened values; deletion clears them altogether. Without a
/// key (a default start, whose only provider is the local one) values are stored as they are, and a silo configured
/// with a provider that answers secrets refuses to start without one (<see cref="RequireFor"/>).
/// </summary>
public sealed class ConnectionSecrets
{
    public const string KeySetting = "Broker:SecretsKey";
    private const string Prefix = "sealed:v1:";
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[]? _key;

    public ConnectionSecrets(byte[]? key)
    {
        if (key is not null && key.Length != 32)
        {
            throw new StartupException($"{KeySetting} must be 32 bytes in base64 (e.g. `openssl rand -base64 32`), not {key.Length} bytes");
        }
        _key = key;
    }

    public bool Sealing => _key is not null;

    public static ConnectionSecrets FromConfiguration(IConfiguration configuration)
    {
        var text = configuration[KeySetting];
        if (string.IsNullOrWhiteSpace(text))
        {
            return new ConnectionSecrets(null);
        }
        try
        {
            return new ConnectionSecrets(Convert.FromBase64String(text.Trim()));
        }
        catch (FormatException)
        {
            throw new StartupException($"{KeySetting} is not base64 (make one with `openssl rand -base64 32`)");
        }
    }

    /// <summary>Refuses to start a silo whose configured providers answer secrets when there is no key to seal them.</summary>
    public void RequireFor(IReadOnlyCollection<string> providers)
    {
        if (!Sealing && providers.Count > 0)
        {
            throw new StartupException($"{KeySetting} is required with the {string.Join(", ", providers)} provider(s): their connection " +
                "details (passwords, access tokens) are stored sealed under it. Make one with `openssl rand -base64 32` and give every silo the same");
        }
    }

    public Dictionary<string, string> Seal(string sandboxId, IReadOnlyDictionary<string, string> details) =>
        details.ToDictionary(d => d.Key, d => _key is null ? d.Value : SealValue(sandboxId, d.Key, d.Value), StringComparer.Ordinal);

    /// <summary>The stored details opened; values stored before sealing (no prefix) are answered as they are.</summary>
    public Dictionary<string, string> Open(string sandboxId, IReadOnlyDictionary<string, string> stored) =>
        stored.ToDictionary(d => d.Key, d => d.Value.StartsWith(Prefix, StringComparison.Ordinal) ? OpenValue(sandboxId, d.Key, d.Value) : d.Value,
            StringComparer.Ordinal);

    private string SealValue(string sandboxId, string name, string value)
    {
        var plain = Encoding.UTF8.GetBytes(value);
        var sealedBytes = new byte[NonceSize + plain.Length + TagSize];
        var nonce = sealedBytes.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key!, TagSize);
        aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceSize, plain.Length), sealedBytes.AsSpan(NonceSize + plain.Length), Bound(sandboxId, name));
        return Prefix + Convert.ToBase64String(sealedBytes);
    }

    private string OpenValue(string sandboxId, string name, string value)
    {
        if (_key is null)
        {
            throw new BrokerException(ErrorCodes.ProviderError,
                $"sandbox {sandboxId}'s connection details are sealed and this silo has no {KeySetting} to open them");
        }
        var sealedBytes = Convert.FromBase64String(value[Prefix.Length..]);
        var plain = new byte[sealedBytes.Length - NonceSize - TagSize];
        using var aes = new AesGcm(_key, TagSize);
        try
        {
            aes.Decrypt(sealedBytes.AsSpan(0, NonceSize), sealedBytes.AsSpan(NonceSize, plain.Length), sealedBytes.AsSpan(NonceSize + plain.Length), plain,
                Bound(sandboxId, name));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new BrokerException(ErrorCodes.ProviderError,
                $"sandbox {sandboxId}'s connection details do not open with this silo's {KeySetting} (every silo needs the same key)");
        }
        return Encoding.UTF8.GetString(plain);
    }

    private static byte[] Bound(string sandboxId, string name) => Encoding.UTF8.GetBytes($"{sandboxId}\n{name}");
}
