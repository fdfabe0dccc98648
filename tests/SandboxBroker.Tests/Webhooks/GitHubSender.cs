using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SandboxBroker.Gateway.Webhooks;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>Sends GitHub-shaped deliveries (signed like GitHub signs them) and reads the admin view of deliveries.</summary>
public sealed class GitHubSender(BrokerGateway gateway, string secret)
{
    private readonly HttpClient _anonymous = gateway.Anonymous();
    private readonly HttpClient _admin = gateway.Admin();

    public static string NewDeliveryId() => Guid.NewGuid().ToString();

    /// <summary>Posts <paramref name="body"/> as GitHub does; <paramref name="signature"/> overrides the computed X-Hub-Signature-256 (null header when empty).</summary>
    /// <param name="expectContinue">Sends <c>Expect: 100-continue</c> and the body only when the gateway asks for it, as a
    /// careful client of a large body does: a refusal before the body (413 by Content-Length) is then read as an answer
    /// instead of racing the upload into a closed connection.</param>
    public async Task<HttpResponseMessage> SendAsync(string eventName, string deliveryId, string body, string? signature = null, bool expectContinue = false)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/github") { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-GitHub-Event", eventName);
        request.Headers.Add("X-GitHub-Delivery", deliveryId);
        request.Headers.UserAgent.ParseAdd("GitHub-Hookshot/test");
        request.Headers.ExpectContinue = expectContinue;
        var header = signature ?? GitHubSignature.Compute(secret, bytes);
        if (header.Length > 0)
        {
            request.Headers.Add("X-Hub-Signature-256", header);
        }
        return await _anonymous.SendAsync(request);
    }

    /// <summary>Sends and expects 202; returns the receipt.</summary>
    public async Task<JsonElement> DeliverAsync(string eventName, string deliveryId, string body)
    {
        using var response = await SendAsync(eventName, deliveryId, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<JsonElement?> GetDeliveryAsync(string deliveryId)
    {
        using var response = await _admin.GetAsync($"/v1/admin/webhooks/deliveries/{deliveryId}");
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    /// <summary>Waits until the delivery reaches <paramref name="status"/> and returns it.</summary>
    public async Task<JsonElement> WaitForAsync(string deliveryId, string status)
    {
        JsonElement? last = null;
        await Eventually.TrueAsync(async () =>
        {
            last = await GetDeliveryAsync(deliveryId);
            return last?.Str("status") == status;
        }, $"delivery {deliveryId} is {status} (last seen: {last})");
        return last!.Value;
    }

    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// An <c>issues</c> payload with the fields the broker reads (and a few it does not). Each call is a distinct event:
    /// two real events' bodies differ, here by a nonce the broker ignores. The same body under another delivery id is a
    /// redelivery, which the broker recognises.
    /// </summary>
    public static string IssuePayload(string action, string repository, long number, DateTimeOffset updatedAt, string state = "open",
        string[]? labels = null, string? label = null) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["action"] = action,
            ["issue"] = Issue(number, updatedAt, state, labels),
            ["label"] = label is null ? null : new { name = label, color = "ededed" },
            ["repository"] = Repository(repository),
            ["sender"] = new { login = "octocat", id = 1 },
            ["test_nonce"] = Guid.NewGuid().ToString("N"),
        });

    public static string CommentPayload(string repository, long number, DateTimeOffset updatedAt, bool pullRequest = false)
    {
        var issue = Issue(number, updatedAt, "open", null);
        if (pullRequest)
        {
            issue["pull_request"] = new { url = $"https://api.github.com/repos/{repository}/pulls/{number}" };
        }
        return JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["action"] = "created",
            ["issue"] = issue,
            ["comment"] = new { id = 7, body = "please look", created_at = Time(updatedAt), updated_at = Time(updatedAt) },
            ["repository"] = Repository(repository),
            ["sender"] = new { login = "octocat", id = 1 },
            ["test_nonce"] = Guid.NewGuid().ToString("N"),
        });
    }

    private static Dictionary<string, object?> Issue(long number, DateTimeOffset updatedAt, string state, string[]? labels) => new()
    {
        ["number"] = number,
        ["title"] = $"Issue {number}",
        ["state"] = state,
        ["labels"] = (labels ?? []).Select(l => new { name = l }).ToArray(),
        ["created_at"] = "2024-01-01T00:00:00Z",
        ["updated_at"] = Time(updatedAt),
        ["html_url"] = $"https://github.com/issues/{number}",
    };

    private static object Repository(string fullName) => new
    {
        full_name = fullName,
        name = fullName[(fullName.IndexOf('/') + 1)..],
        owner = new { login = fullName[..fullName.IndexOf('/')] },
    };
}
