using System.Globalization;
using System.Text.Json;

namespace SandboxBroker.Gateway.Webhooks;

/// <summary>What one GitHub event asks of the broker: an intent on one issue's claim, or nothing (with the reason).</summary>
public abstract record MappedEvent;

/// <summary>Nothing to do; the reason is recorded with the delivery.</summary>
public sealed record IgnoredEvent(string Reason) : MappedEvent;

/// <summary>
/// An acquire, release or touch of <see cref="ClaimKey"/>. <see cref="Name"/> (the rendered sandbox name) and
/// <see cref="Labels"/> matter for an acquire; <see cref="UpdatedAt"/> orders the issue's events.
/// </summary>
public sealed record IssueEvent(
    IssueIntentKind Kind,
    string ClaimKey,
    string Repository,
    long Number,
    DateTimeOffset UpdatedAt,
    string Name,
    IReadOnlyDictionary<string, string> Labels,
    string Description) : MappedEvent;

/// <summary>A signed payload that is not what its event promises (missing or mistyped fields); retrying cannot help.</summary>
public sealed class InvalidPayloadException(string message) : Exception(message);

/// <summary>
/// Maps a GitHub event and its JSON payload to what it means for an issue's claim. Pure: no I/O, no clock.
/// <list type="bullet">
/// <item><c>issues.opened</c>, <c>issues.reopened</c>: acquire (with a trigger label: only when the issue carries it);</item>
/// <item><c>issues.labeled</c> / <c>issues.unlabeled</c> with the trigger label: acquire (an open issue) / release;</item>
/// <item><c>issues.closed</c>, <c>issues.deleted</c>, <c>issues.transferred</c>: release the issue's (old) key;</item>
/// <item><c>issue_comment.created</c> on an issue (not a pull request): touch;</item>
/// <item>anything else, and any repository not configured: ignored.</item>
/// </list>
/// </summary>
public static class IssueEventMapper
{
    public const string LabelRepository = "github.repository";
    public const string LabelIssue = "github.issue";
    private const int MaxNameLength = 100;

    public static MappedEvent Map(string eventName, ReadOnlySpan<byte> payload, WebhookSettings settings)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(payload.ToArray());
        }
        catch (JsonException e)
        {
            throw new InvalidPayloadException($"the payload is not JSON: {e.Message}");
        }
        using (document)
        {
            return Map(eventName, document.RootElement, settings);
        }
    }

    public static MappedEvent Map(string eventName, JsonElement root, WebhookSettings settings)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidPayloadException("the payload is not a JSON object");
        }
        if (eventName is not ("issues" or "issue_comment"))
        {
            return new IgnoredEvent($"event '{eventName}' is not handled");
        }
        var action = String(root, "action") ?? throw new InvalidPayloadException("the payload has no 'action'");
        var what = $"{eventName}.{action}";
        var repository = Object(root, "repository") is { } repo ? String(repo, "full_name") : null;
        if (repository is null)
        {
            throw new InvalidPayloadException($"{what}: the payload has no 'repository.full_name'");
        }
        if (!settings.AcceptsRepository(repository))
        {
            return new IgnoredEvent($"repository '{repository}' is not configured");
        }
        var issue = Object(root, "issue") ?? throw new InvalidPayloadException($"{what}: the payload has no 'issue'");

        if (eventName == "issue_comment")
        {
            if (action != "created")
            {
                return new IgnoredEvent($"{what} is not handled");
            }
            if (issue.TryGetProperty("pull_request", out _))
            {
                return new IgnoredEvent($"{what} on a pull request is not handled");
            }
            return ToIssueEvent(IssueIntentKind.Touch, what, repository, issue, settings);
        }
        var kind = IssueIntent(action, root, issue, settings, out var ignoreReason);
        return kind is null ? new IgnoredEvent(ignoreReason!) : ToIssueEvent(kind.Value, what, repository, issue, settings);
    }

    private static IssueIntentKind? IssueIntent(string action, JsonElement root, JsonElement issue, WebhookSettings settings, out string? ignoreReason)
    {
        ignoreReason = null;
        var trigger = settings.TriggerLabel;
        switch (action)
        {
            case "opened" or "reopened":
                if (trigger is not null && !HasLabel(issue, trigger))
                {
                    ignoreReason = $"issues.{action}: the issue lacks the trigger label '{trigger}'";
                    return null;
                }
                return IssueIntentKind.Acquire;
            case "closed" or "deleted" or "transferred":
                return IssueIntentKind.Release;
            case "labeled" or "unlabeled":
                if (trigger is null)
                {
                    ignoreReason = $"issues.{action}: no trigger label is configured";
                    return null;
                }
                var label = Object(root, "label") is { } l ? String(l, "name") : null;
                if (!string.Equals(label, trigger, StringComparison.OrdinalIgnoreCase))
                {
                    ignoreReason = $"issues.{action}: label '{label}' is not the trigger label '{trigger}'";
                    return null;
                }
                if (action == "unlabeled")
                {
                    return IssueIntentKind.Release;
                }
                if (String(issue, "state") == "closed")
                {
                    ignoreReason = "issues.labeled: the issue is closed";
                    return null;
                }
                return IssueIntentKind.Acquire;
            default:
                ignoreReason = $"issues.{action} is not handled";
                return null;
        }
    }

    private static IssueEvent ToIssueEvent(IssueIntentKind kind, string what, string repository, JsonElement issue, WebhookSettings settings)
    {
        if (!issue.TryGetProperty("number", out var numberElement) || numberElement.ValueKind != JsonValueKind.Number ||
            !numberElement.TryGetInt64(out var number) || number <= 0)
        {
            throw new InvalidPayloadException($"{what}: the payload has no valid 'issue.number'");
        }
        var updatedText = String(issue, "updated_at") ?? throw new InvalidPayloadException($"{what}: the payload has no 'issue.updated_at'");
        if (!DateTimeOffset.TryParse(updatedText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var updatedAt))
        {
            throw new InvalidPayloadException($"{what}: 'issue.updated_at' is not a time: '{updatedText}'");
        }
        var key = $"github:{repository}#{number.ToString(CultureInfo.InvariantCulture)}";
        if (!SandboxBroker.ClaimKey.IsValid(key, out var reason))
        {
            throw new InvalidPayloadException($"{what}: '{key}' is not a valid claim key: {reason}");
        }
        var slash = repository.IndexOf('/');
        var name = settings.NameTemplate
            .Replace("{number}", number.ToString(CultureInfo.InvariantCulture))
            .Replace("{repo}", slash >= 0 ? repository[(slash + 1)..] : repository)
            .Replace("{owner}", slash >= 0 ? repository[..slash] : "")
            .Replace("{key}", key);
        if (name.Length > MaxNameLength)
        {
            name = name[..MaxNameLength]; // the broker cuts names to a DNS label (63) anyway
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [LabelRepository] = repository,
            [LabelIssue] = number.ToString(CultureInfo.InvariantCulture),
        };
        return new IssueEvent(kind, key, repository, number, updatedAt, name, labels, what);
    }

    private static bool HasLabel(JsonElement issue, string label) =>
        issue.TryGetProperty("labels", out var labels) && labels.ValueKind == JsonValueKind.Array &&
        labels.EnumerateArray().Any(l => l.ValueKind == JsonValueKind.Object && string.Equals(String(l, "name"), label, StringComparison.OrdinalIgnoreCase));

    private static JsonElement? Object(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object ? value : null;

    /// <summary>A string field; one holding an escape that is no UTF-16 (a lone \ud800) makes the payload invalid, not the processor fail.</summary>
    private static string? String(JsonElement parent, string name)
    {
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String)
        {
            return null;
        }
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            throw new InvalidPayloadException($"'{name}' is not valid text (an escape that is no UTF-16)");
        }
    }
}
