using System.CommandLine;
using SandboxBroker.Client;
using Spectre.Console.Rendering;

namespace SandboxBroker.Cli.Commands;

/// <summary><c>sandboxbroker webhooks deliveries [id]|retry</c> (admin scope).</summary>
public static class WebhookCommands
{
    public static Command Create()
    {
        var webhooks = new Command("webhooks", "GitHub webhook deliveries (admin token)");

        var id = new Argument<string?>("delivery-id") { Description = "show this delivery only", Arity = ArgumentArity.ZeroOrOne };
        var status = new Option<string?>("--status") { Description = "received, processed, ignored or failed" };
        var limit = new Option<int?>("--limit") { Description = "at most this many (newest first)" };
        var deliveries = new Command("deliveries", "deliveries, newest first, with what processing did") { id, status, limit };
        deliveries.Action(async c =>
        {
            if (c.Value(id) is { } deliveryId)
            {
                c.Output.Write(await c.Client.WebhookDeliveries.GetAsync(deliveryId, c.Cancellation), d => Details(d, c.Output));
                return;
            }
            var list = await c.Client.WebhookDeliveries.ListAsync(c.Value(status), c.Value(limit), c.Cancellation);
            c.Output.Write(new WebhookDeliveryList(list), l =>
            {
                var table = Output.Table("delivery", "event", "repository", "status", "received", "attempts", "outcome / error");
                foreach (var d in l.Items)
                {
                    Output.Row(table, d.DeliveryId, d.Action is null ? d.Event : $"{d.Event}.{d.Action}", d.Repository, d.Status,
                        c.Output.When(d.ReceivedAt), $"{d.Attempts}", d.Error ?? d.Outcome);
                }
                return table;
            });
        });
        webhooks.Subcommands.Add(deliveries);

        var retryId = new Argument<string>("delivery-id") { Description = "a failed or ignored delivery" };
        var retry = new Command("retry", "process a failed or ignored delivery again") { retryId };
        retry.Action(async c => c.Output.Write(await c.Client.WebhookDeliveries.RetryAsync(c.Value(retryId), c.Cancellation), d => Details(d, c.Output)));
        webhooks.Subcommands.Add(retry);
        return webhooks;
    }

    private static IRenderable Details(WebhookDelivery d, Output output) => Output.Fields(
    [
        ("delivery", d.DeliveryId),
        ("event", d.Action is null ? d.Event : $"{d.Event}.{d.Action}"),
        ("repository", d.Repository),
        ("status", d.Status),
        ("received", output.When(d.ReceivedAt)),
        ("processed", d.ProcessedAt is null ? null : output.When(d.ProcessedAt)),
        ("attempts", $"{d.Attempts}"),
        ("outcome", d.Outcome),
        ("error", d.Error),
        ("redeliveries", $"{d.Redeliveries}"),
    ]);
}
