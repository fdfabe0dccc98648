using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace SandboxBroker.Grains.Providers.Http;

/// <summary>
/// One REST call to a provider, with its failures mapped to <see cref="ProviderException"/>: an open circuit, a
/// timeout, a connection error, 5xx, 408 and 429 are transient (the broker answers PROVIDER_UNAVAILABLE and retries
/// later); other 4xx are not (PROVIDER_ERROR).
/// </summary>
/// <remarks>A client is taken from the factory per call (as IHttpClientFactory intends, so handlers rotate); the
/// resilience pipeline, and with it the circuit breaker, is shared by every client of that name.</remarks>
public sealed class ProviderHttp(string provider, IHttpClientFactory clients)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, string what, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(method, path, body, cancellationToken);
        await EnsureSuccessAsync(response, what, cancellationToken);
        return await ReadAsync<T>(response, what, cancellationToken);
    }

    /// <summary>As <see cref="SendAsync{T}"/>, but a 404 is null.</summary>
    public async Task<T?> SendOrNullAsync<T>(HttpMethod method, string path, object? body, string what, CancellationToken cancellationToken)
        where T : class
    {
        using var response = await SendRawAsync(method, path, body, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureSuccessAsync(response, what, cancellationToken);
        return await ReadAsync<T>(response, what, cancellationToken);
    }

    /// <summary>A call whose answer has no body worth reading; <paramref name="accepted"/> statuses also count as success.</summary>
    public async Task SendAsync(HttpMethod method, string path, object? body, string what, CancellationToken cancellationToken, params HttpStatusCode[] accepted)
    {
        using var response = await SendRawAsync(method, path, body, cancellationToken);
        if (accepted.Contains(response.StatusCode))
        {
            return;
        }
        await EnsureSuccessAsync(response, what, cancellationToken);
    }

    public async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: Json);
        }
        try
        {
            return await clients.CreateClient(provider).SendAsync(request, cancellationToken);
        }
        catch (BrokenCircuitException e)
        {
            throw new ProviderException(provider, $"not calling the {provider} API: its circuit breaker is open after repeated failures ({e.Message})", transient: true, e);
        }
        catch (TimeoutRejectedException e)
        {
            throw new ProviderException(provider, $"{method} {path} timed out", transient: true, e);
        }
        catch (HttpRequestException e)
        {
            throw new ProviderException(provider, $"{method} {path} failed: {e.Message}", transient: true, e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(provider, $"{method} {path} timed out", transient: true, e);
        }
    }

    public async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (text.Length > 300)
        {
            text = text[..300] + "...";
        }
        var transient = status >= 500 || response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
        throw new ProviderException(provider, $"{what}: HTTP {status} {text}".TrimEnd(), transient);
    }

    private async Task<T> ReadAsync<T>(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken)
                ?? throw new ProviderException(provider, $"{what}: empty answer", transient: false);
        }
        catch (JsonException e)
        {
            throw new ProviderException(provider, $"{what}: unreadable answer ({e.Message})", transient: false, e);
        }
    }
}
