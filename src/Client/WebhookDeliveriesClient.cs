namespace SandboxBroker.Client;

/// <summary><c>/v1/admin/webhooks/deliveries</c> (admin scope): what the GitHub webhook received and what processing did.</summary>
public sealed class WebhookDeliveriesClient
{
    private readonly BrokerHttp _http;

    internal WebhookDeliveriesClient(BrokerHttp http) => _http = http;

    /// <summary>Deliveries, newest first; status is received, processed, ignored or failed.</summary>
    public async Task<IReadOnlyList<WebhookDelivery>> ListAsync(string? status = null, int? limit = null, CancellationToken ct = default) =>
        (await _http.SendAsync<WebhookDeliveryList>(HttpMethod.Get,
            Paths.Query("v1/admin/webhooks/deliveries", ("status", status), ("limit", limit?.ToString(System.Globalization.CultureInfo.InvariantCulture))),
            null, idempotent: true, "list deliveries", ct)).Value.Items;

    public async Task<WebhookDelivery> GetAsync(string deliveryId, CancellationToken ct = default) =>
        (await _http.SendAsync<WebhookDelivery>(HttpMethod.Get, "v1/admin/webhooks/deliveries/" + Paths.Segment(deliveryId), null,
            idempotent: true, "get delivery", ct)).Value;

    /// <summary>
    /// Processes a failed or ignored delivery again. Not retried on a lost answer: a repeat after it was processed
    /// answers CONFLICT, which would hide that the first one worked.
    /// </summary>
    public async Task<WebhookDelivery> RetryAsync(string deliveryId, CancellationToken ct = default) =>
        (await _http.SendAsync<WebhookDelivery>(HttpMethod.Post, "v1/admin/webhooks/deliveries/" + Paths.Segment(deliveryId) + "/retry", null,
            idempotent: false, "retry delivery", ct)).Value;
}
