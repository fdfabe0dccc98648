namespace SandboxBroker.Grains.Providers.E2B;

// The parts of E2B's REST shapes the broker uses (https://e2b.dev/docs/api-reference, openapi-public.yml:
// NewSandbox, Sandbox, SandboxDetail, ListedSandbox). JSON keys are camelCase with "ID" suffixes.

internal sealed record E2BNewSandbox(
    [property: System.Text.Json.Serialization.JsonPropertyName("templateID")] string TemplateId,
    int Timeout,
    bool AutoPause,
    Dictionary<string, string> Metadata);

/// <summary>The answer to a create.</summary>
internal sealed record E2BCreatedSandbox(
    [property: System.Text.Json.Serialization.JsonPropertyName("sandboxID")] string SandboxId,
    [property: System.Text.Json.Serialization.JsonPropertyName("templateID")] string? TemplateId,
    [property: System.Text.Json.Serialization.JsonPropertyName("clientID")] string? ClientId,
    string? EnvdVersion,
    string? EnvdAccessToken,
    string? Domain);

/// <summary>A sandbox as <c>GET /sandboxes/{id}</c> and <c>GET /v2/sandboxes</c> describe it. State: running or paused.</summary>
internal sealed record E2BSandbox(
    [property: System.Text.Json.Serialization.JsonPropertyName("sandboxID")] string SandboxId,
    [property: System.Text.Json.Serialization.JsonPropertyName("templateID")] string? TemplateId,
    string? Alias,
    DateTimeOffset? StartedAt,
    DateTimeOffset? EndAt,
    string? State,
    Dictionary<string, string>? Metadata,
    string? Domain,
    string? EnvdAccessToken);

internal sealed record E2BTimeout(int Timeout);

internal sealed record E2BResume(int Timeout, bool AutoPause);
