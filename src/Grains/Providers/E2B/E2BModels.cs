using System.Text.Json.Serialization;

namespace SandboxBroker.Grains.Providers.E2B;

// The parts of E2B's REST shapes the broker uses (e2b-dev/E2B spec/openapi.yml: NewSandbox, Sandbox, SandboxDetail,
// ListedSandbox, ConnectSandbox). JSON keys are camelCase with "ID" suffixes.

internal sealed record E2BNewSandbox(
    [property: JsonPropertyName("templateID")] string TemplateId,
    int Timeout,
    bool AutoPause,
    // Without it anyone who learns the sandbox's address can drive its envd; with it envd wants the access token.
    bool Secure,
    Dictionary<string, string> Metadata);

/// <summary>The answer to a create and to a connect (spec: Sandbox).</summary>
internal sealed record E2BCreatedSandbox(
    [property: JsonPropertyName("sandboxID")] string SandboxId,
    [property: JsonPropertyName("templateID")] string? TemplateId,
    [property: JsonPropertyName("clientID")] string? ClientId,
    string? EnvdVersion,
    string? EnvdAccessToken,
    string? Domain);

/// <summary>
/// A sandbox as <c>GET /sandboxes/{id}</c> (SandboxDetail, with the envd access token) and <c>GET /v2/sandboxes</c>
/// (ListedSandbox, without it) describe it. State: running or paused.
/// </summary>
internal sealed record E2BSandbox(
    [property: JsonPropertyName("sandboxID")] string SandboxId,
    [property: JsonPropertyName("templateID")] string? TemplateId,
    string? Alias,
    DateTimeOffset? StartedAt,
    DateTimeOffset? EndAt,
    string? State,
    Dictionary<string, string>? Metadata,
    string? Domain,
    string? EnvdAccessToken);

/// <summary>The body of <c>POST /sandboxes/{id}/connect</c>: seconds from now; a running sandbox's timer is only ever extended.</summary>
internal sealed record E2BConnect(int Timeout);
