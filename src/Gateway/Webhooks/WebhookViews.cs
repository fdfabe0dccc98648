using SandboxBroker.Gateway.Api;
using SandboxBroker.Storage;

namespace SandboxBroker.Gateway.Webhooks;

/// <summary>The webhook's answer: the delivery's status after this request, and whether its id was already known.</summary>
public sealed record WebhookReceipt(string DeliveryId, string Status, bool Duplicate);

/// <summary>A delivery in the admin view: what it was, where it is, what processing did (outcome) or why it failed (error).</summary>
public sealed record DeliveryView(
    string DeliveryId,
    string Event,
    string? Action,
    string? Repository,
    string Status,
    DateTime ReceivedAt,
    DateTime? ProcessedAt,
    int Attempts,
    string? Outcome,
    string? Error,
    int Redeliveries,
    DateTime? LastSeenAt)
{
    public static DeliveryView From(WebhookDelivery d) => new(
        d.DeliveryId, d.Event, d.Action, d.Repository, d.Status, ApiJson.Utc(d.ReceivedAt), ApiJson.Utc(d.ProcessedAt), d.Attempts,
        d.Outcome, d.Error, d.Redeliveries, ApiJson.Utc(d.LastSeenAt));
}

public sealed record DeliveryList(IReadOnlyList<DeliveryView> Items);
