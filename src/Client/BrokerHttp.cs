using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Polly.Timeout;

namespace SandboxBroker.Client;

/// <summary>One call to the API: the request, the retry marking, the error shape turned into <see cref="BrokerApiException"/>.</summary>
internal sealed class BrokerHttp(HttpClient http)
{
    public const string RequestIdHeader = "X-Request-ID";

    public async Task<Answer<T>> SendAsync<T>(HttpMethod method, string path, object? body, bool idempotent, string operation, CancellationToken ct,
        IReadOnlyDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: BrokerJson.Options);
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        request.Options.Set(BrokerResilience.Idempotent, idempotent);
        request.Options.Set(BrokerResilience.Operation, operation);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        }
        catch (TimeoutRejectedException e)
        {
            throw new TimeoutException($"{operation}: the broker did not answer in time; the outcome is unknown", e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw await ErrorAsync(response, ct);
            }
            var value = await response.Content.ReadFromJsonAsync<T>(BrokerJson.Options, ct)
                ?? throw new BrokerApiException(response.StatusCode, BrokerErrorCodes.Internal, $"{operation}: the broker answered an empty body",
                    RequestIdOf(response));
            var outcome = response.Headers.TryGetValues("X-Acquire-Outcome", out var values) ? values.FirstOrDefault() : null;
            return new Answer<T>(value, response.StatusCode, outcome);
        }
    }

    /// <summary>The error shape when the answer has it; otherwise the code the broker uses for the status.</summary>
    internal static async Task<BrokerApiException> ErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        // The broker sends Retry-After in seconds; a date (from something in between) is left to the body's retry_after.
        var retryAfter = response.Headers.RetryAfter?.Delta;
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error) &&
                error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String)
            {
                if (retryAfter is null && error.TryGetProperty("retry_after", out var seconds) && seconds.TryGetInt32(out var s))
                {
                    retryAfter = TimeSpan.FromSeconds(s);
                }
                return new BrokerApiException(response.StatusCode, code.GetString()!, String(error, "message") ?? $"HTTP {status}",
                    String(error, "request_id") ?? RequestIdOf(response), String(error, "field"), retryAfter);
            }
        }
        catch (JsonException)
        {
        }
        var message = string.IsNullOrWhiteSpace(text) ? $"HTTP {status} {response.ReasonPhrase}" : $"HTTP {status}: {Shorten(text)}";
        return new BrokerApiException(response.StatusCode, BrokerErrorCodes.ForStatus(status), message, RequestIdOf(response), null, retryAfter);
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string? RequestIdOf(HttpResponseMessage response) =>
        response.Headers.TryGetValues(RequestIdHeader, out var values) ? values.FirstOrDefault() : null;

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";
}

/// <summary>A successful answer: its body, status and X-Acquire-Outcome header.</summary>
internal sealed record Answer<T>(T Value, HttpStatusCode Status, string? Outcome);

/// <summary>Path pieces: values escaped once, so a claim key's '/' and '#' stay inside its segment.</summary>
internal static class Paths
{
    public static string Segment(string value) => Uri.EscapeDataString(value);

    public static string Query(string path, params (string Name, string? Value)[] parameters)
    {
        var present = parameters.Where(p => p.Value is not null).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return present.Count == 0 ? path : $"{path}?{string.Join('&', present)}";
    }
}
