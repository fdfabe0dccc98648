using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Features;
using SandboxBroker.Gateway.Api;

namespace SandboxBroker.Gateway.Webhooks;

/// <summary>
/// A webhook body read as it is signed: at most <see cref="WebhookSettings.MaxPayloadBytes"/> (more is 413, refused by
/// its Content-Length before a byte is read), a malformed or missing signature refused before the body is read, and the
/// HMAC under every secret and the body's SHA-256 computed chunk by chunk as it arrives.
/// </summary>
public sealed record SignedBody(byte[] Bytes, byte[] Sha256)
{
    private const int ChunkBytes = 16 * 1024;

    public static async Task<SignedBody> ReadAsync(HttpContext context, IReadOnlyList<string> secrets)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = WebhookSettings.MaxPayloadBytes; // Kestrel ends a longer chunked body with 413
        }
        if (context.Request.ContentLength > WebhookSettings.MaxPayloadBytes)
        {
            throw TooLarge();
        }
        string? header = context.Request.Headers[GitHubSignature.Header];
        if (!GitHubSignature.TryParse(header, out var presented))
        {
            throw GitHubSignature.Refused(header);
        }
        var hmacs = secrets.Select(s => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(s))).ToList();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            using var buffer = new MemoryStream(context.Request.ContentLength is { } l ? (int)l : ChunkBytes);
            var chunk = new byte[ChunkBytes];
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                if (buffer.Length + read > WebhookSettings.MaxPayloadBytes)
                {
                    throw TooLarge(); // where no server limit applies (a test host): the same answer
                }
                buffer.Write(chunk, 0, read);
                sha.AppendData(chunk, 0, read);
                foreach (var hmac in hmacs)
                {
                    hmac.AppendData(chunk, 0, read);
                }
            }
            // Every secret is tried and compared in constant time: the time taken says nothing about which matched.
            var match = false;
            foreach (var hmac in hmacs)
            {
                match |= CryptographicOperations.FixedTimeEquals(hmac.GetHashAndReset(), presented);
            }
            return match ? new SignedBody(buffer.ToArray(), sha.GetHashAndReset()) : throw GitHubSignature.Refused(header);
        }
        finally
        {
            foreach (var hmac in hmacs)
            {
                hmac.Dispose();
            }
        }
    }

    private static ApiErrorException TooLarge() =>
        new ApiError(StatusCodes.Status413PayloadTooLarge, GatewayErrorCodes.PayloadTooLarge,
            $"the payload is larger than {WebhookSettings.MaxPayloadBytes / (1024 * 1024)} MB").ToException();
}
