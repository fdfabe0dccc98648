namespace SandboxBroker.Grains.Providers.Daytona;

// The parts of Daytona's REST shapes the broker uses (daytonaio/daytona apps/api/src/sandbox/dto: SandboxDto,
// CreateSandboxDto, SandboxLabelsDto, ListSandboxesResponseDto). JSON is camelCase.

internal sealed record DaytonaSandbox(
    string Id,
    string? Name,
    string? State,
    string? ErrorReason,
    Dictionary<string, string>? Labels,
    DateTimeOffset? CreatedAt,
    int? AutoStopInterval,
    string? Target);

internal sealed record DaytonaCreateSandbox(
    string? Name,
    string? Snapshot,
    Dictionary<string, string> Labels,
    int AutoStopInterval,
    string? Target);

internal sealed record DaytonaLabels(Dictionary<string, string> Labels);

/// <summary>A page of <c>GET /api/sandbox</c>: the items and the cursor of the next page (null on the last one).</summary>
internal sealed record DaytonaSandboxPage(List<DaytonaSandbox> Items, string? NextCursor);
