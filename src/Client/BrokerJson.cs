using System.Text.Json;
using System.Text.Json.Serialization;

namespace SandboxBroker.Client;

/// <summary>The API's JSON: snake_case names, label keys as given, nulls left out of request bodies.</summary>
public static class BrokerJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
