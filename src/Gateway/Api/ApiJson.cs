using System.Text.Json;
using System.Text.Json.Serialization;

namespace SandboxBroker.Gateway.Api;

/// <summary>The API's JSON: snake_case names and enum values, times as RFC 3339 UTC.</summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    /// <summary>
    /// How request bodies are read: <see cref="Options"/>, plus every string (dictionary keys included) through
    /// <see cref="ApiInput"/>, and a property given twice refused (two readers of one body must not disagree on it).
    /// Kept apart from <see cref="Options"/> so responses and the OpenAPI schemas are untouched by the converter.
    /// </summary>
    public static JsonSerializerOptions RequestOptions { get; } = ConfigureRequests(Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web)));

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

    private static JsonSerializerOptions ConfigureRequests(JsonSerializerOptions options)
    {
        options.Converters.Add(new CheckedStringConverter());
        options.AllowDuplicateProperties = false;
        return options;
    }

    /// <summary>Times leave the API as UTC (serialized with a trailing Z).</summary>
    public static DateTime Utc(DateTimeOffset value) => value.UtcDateTime;

    public static DateTime? Utc(DateTimeOffset? value) => value?.UtcDateTime;

    /// <summary>Reads strings as usual and refuses those <see cref="ApiInput"/> refuses; the reader adds the path.</summary>
    private sealed class CheckedStringConverter : JsonConverter<string>
    {
        public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String)
            {
                throw new JsonException(); // the serializer words it as a value of the wrong type, with the path
            }
            return Checked(reader.GetString()!, "the value");
        }

        public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Checked(reader.GetString()!, "a key");

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

        public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);

        private static string Checked(string value, string what) =>
            ApiInput.Problem(value, what) is { } problem ? throw new RefusedTextException(problem) : value;
    }
}

/// <summary>A string in a request body that <see cref="ApiInput"/> refuses; the serializer fills in <see cref="JsonException.Path"/>.</summary>
public sealed class RefusedTextException(string message) : JsonException(message);
