using System.Text.Json;
using System.Text.Json.Serialization;

namespace SandboxBroker.Gateway.Api;

/// <summary>The API's JSON: snake_case names and enum values, times as RFC 3339 UTC.</summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        // Responses are JSON, never embedded in HTML: keep quotes and non-ASCII readable in messages.
        options.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DictionaryKeyPolicy = null; // labels keep their keys
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.RespectNullableAnnotations = true; // a null where the contract has none is bad input, not a crash later
        return options;
    }

    /// <summary>Times leave the API as UTC (serialized with a trailing Z).</summary>
    public static DateTime Utc(DateTimeOffset value) => value.UtcDateTime;

    public static DateTime? Utc(DateTimeOffset? value) => value?.UtcDateTime;
}
