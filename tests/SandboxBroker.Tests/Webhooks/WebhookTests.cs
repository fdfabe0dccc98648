using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using SandboxBroker.Gateway.Webhooks;
using SandboxBroker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>POST /v1/webhooks/github against a real cluster on Postgres: signatures, dedupe, ordering, exactly one sandbox.</summary>
[Collection(WebhookCollection.Name)]
public sealed class WebhookTests(WebhookFixture fixture, ITestOutputHelper output)
{
    private const string Repo = WebhookFixture.Repository;
    private readonly GitHubSender _github = fixture.GitHub;
    private readonly HttpClient _admin = fixture.Gateway.Admin();
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 9, 0, 0, TimeSpan.Zero);

    private IReadOnlyList<string> SandboxesNamed(string name) => WebhookFixture.ProviderSandboxesNamed(fixture.Broker, name);

    private async Task<JsonElement?> ActiveClaimAsync(string key)
    {
        using var response = await _admin.GetAsync($"/v1/claims/{ApiAssert.Key(key)}?tenant={WebhookFixture.Tenant}");
        return response.StatusCode == HttpStatusCode.NotFound ? null : await response.JsonAsync();
    }

    private Task<long> CountAsync(string sql, params object[] parameters) =>
        fixture.Broker.Database.ScalarAsync<long>(sql, parameters);

    [Fact]
    public async Task Fifty_concurrent_deliveries_of_opened_for_one_issue_give_one_sandbox()
    {
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var ids = Enumerable.Range(0, 50).Select(_ => GitHubSender.NewDeliveryId()).ToArray();

        var clock = Stopwatch.StartNew();
        var answers = await Task.WhenAll(ids.Select(async id =>
        {
            var started = clock.Elapsed;
            var receipt = await _github.DeliverAsync("issues", id, GitHubSender.IssuePayload("opened", Repo, number, T0));
            return (Receipt: receipt, Took: clock.Elapsed - started);
        }));
        var allAnswered = clock.Elapsed;
        Assert.All(answers, a => Assert.Equal("received", a.Receipt.Str("status")));
        Assert.All(answers, a => Assert.False(a.Receipt.GetProperty("duplicate").GetBoolean()));

        await Eventually.TrueAsync(async () => await CountAsync(
            "SELECT count(*) FROM broker_webhook_deliveries WHERE delivery_id = ANY($1) AND status = 'processed'", (object)ids) == 50,
            "all 50 deliveries are processed");
        var allProcessed = clock.Elapsed;
        output.WriteLine($"50 concurrent deliveries: slowest answer {answers.Max(a => a.Took).TotalMilliseconds:0} ms, " +
            $"all answered after {allAnswered.TotalMilliseconds:0} ms, all processed after {allProcessed.TotalMilliseconds:0} ms");

        var claim = await ActiveClaimAsync(key);
        Assert.NotNull(claim);
        Assert.Equal(1, claim.Value.GetProperty("lease_number").GetInt64());
        Assert.Equal($"claude-issue-{number}", claim.Value.Str("sandbox_name"));
        Assert.Equal("github", claim.Value.Str("tenant"));
        Assert.Equal(Repo, claim.Value.GetProperty("labels").Str(IssueEventMapper.LabelRepository));
        Assert.Equal(number.ToString(), claim.Value.GetProperty("labels").Str(IssueEventMapper.LabelIssue));
        Assert.Equal(claim.Value.Str("sandbox_id"), Assert.Single(SandboxesNamed($"claude-issue-{number}")));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.acquired'", ClaimId.Of(WebhookFixture.Tenant, key)));
        var outcomes = await Task.WhenAll(ids.Take(5).Select(id => _github.GetDeliveryAsync(id)));
        Assert.All(outcomes, o => Assert.StartsWith(key, o!.Value.Str("outcome")));
    }

    [Fact]
    public async Task The_same_delivery_sent_twenty_times_concurrently_has_one_effect()
    {
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var id = GitHubSender.NewDeliveryId();
        var body = GitHubSender.IssuePayload("opened", Repo, number, T0);

        var receipts = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => _github.DeliverAsync("issues", id, body)));
        Assert.Single(receipts, r => !r.GetProperty("duplicate").GetBoolean());
        Assert.Equal(19, receipts.Count(r => r.GetProperty("duplicate").GetBoolean()));

        var delivery = await _github.WaitForAsync(id, "processed");
        Assert.Equal(1, delivery.GetProperty("attempts").GetInt32());
        Assert.Equal(19, delivery.GetProperty("redeliveries").GetInt32());
        Assert.Single(SandboxesNamed($"claude-issue-{number}"));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.acquired'", ClaimId.Of(WebhookFixture.Tenant, key)));
        Assert.Equal(1, (await fixture.Broker.Grains.GetGrain<IGitHubIssueGrain>(key).GetState()).RememberedDeliveries);

        // A redelivery of the processed delivery: answered, no second effect.
        var again = await _github.DeliverAsync("issues", id, body);
        Assert.True(again.GetProperty("duplicate").GetBoolean());
        Assert.Equal("processed", again.Str("status"));
        Assert.Equal(1, (await _github.GetDeliveryAsync(id))!.Value.GetProperty("attempts").GetInt32());
        Assert.Equal(1, (await ActiveClaimAsync(key))!.Value.GetProperty("lease_number").GetInt64());
    }

    [Fact]
    public async Task A_late_opened_older_than_the_close_does_not_resurrect_the_sandbox_and_a_newer_reopen_does()
    {
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var name = $"claude-issue-{number}";

        var opened = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", opened, GitHubSender.IssuePayload("opened", Repo, number, T0));
        await _github.WaitForAsync(opened, "processed");
        var first = (await ActiveClaimAsync(key))!.Value.Str("sandbox_id");
        Assert.Equal(first, Assert.Single(SandboxesNamed(name)));

        var closed = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", closed, GitHubSender.IssuePayload("closed", Repo, number, T0.AddMinutes(5), state: "closed"));
        Assert.Contains("released", (await _github.WaitForAsync(closed, "processed")).Str("outcome"));
        Assert.Null(await ActiveClaimAsync(key));
        await Eventually.TrueAsync(() => SandboxesNamed(name).Count == 0, "the closed issue's sandbox is deleted at the provider");

        // Late: an "opened" older than the close, and one with the close's own timestamp (a release wins a tie).
        var late = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", late, GitHubSender.IssuePayload("opened", Repo, number, T0));
        Assert.Contains("stale event", (await _github.WaitForAsync(late, "ignored")).Str("outcome"));
        var tie = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", tie, GitHubSender.IssuePayload("reopened", Repo, number, T0.AddMinutes(5)));
        Assert.Contains("stale event", (await _github.WaitForAsync(tie, "ignored")).Str("outcome"));
        Assert.Null(await ActiveClaimAsync(key));
        Assert.Empty(SandboxesNamed(name));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.acquired'", ClaimId.Of(WebhookFixture.Tenant, key)));

        var reopened = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", reopened, GitHubSender.IssuePayload("reopened", Repo, number, T0.AddMinutes(10)));
        await _github.WaitForAsync(reopened, "processed");
        var claim = (await ActiveClaimAsync(key))!.Value;
        var second = claim.Str("sandbox_id");
        Assert.NotEqual(first, second);
        Assert.Equal(2, claim.GetProperty("lease_number").GetInt64());
        Assert.Equal(second, Assert.Single(SandboxesNamed(name)));
    }

    [Fact]
    public async Task A_tampered_body_a_missing_signature_or_another_secret_is_401_and_records_nothing()
    {
        var number = WebhookFixture.NewIssueNumber();
        var signedBody = GitHubSender.IssuePayload("opened", Repo, number, T0);
        var validLooking = GitHubSignature.Compute(WebhookFixture.Secret, Encoding.UTF8.GetBytes(signedBody));
        var tampered = signedBody.Replace($"\"number\":{number}", $"\"number\":{number + 1}", StringComparison.Ordinal);
        Assert.NotEqual(signedBody, tampered);

        var ids = new List<string>();
        foreach (var (body, signature) in new[]
                 {
                     (tampered, validLooking),
                     (signedBody, ""),
                     (signedBody, GitHubSignature.Compute("not-the-secret", Encoding.UTF8.GetBytes(signedBody))),
                     (signedBody, "sha256=" + new string('0', 64)),
                 })
        {
            var id = GitHubSender.NewDeliveryId();
            ids.Add(id);
            using var response = await _github.SendAsync("issues", id, body, signature);
            await response.AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
        }
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM broker_webhook_deliveries WHERE delivery_id = ANY($1)", (object)ids.ToArray()));
        Assert.Null(await ActiveClaimAsync(WebhookFixture.KeyOf(number)));
        Assert.Null(await ActiveClaimAsync(WebhookFixture.KeyOf(number + 1)));

        // The same body, correctly signed with the previous secret (a rotation in progress), is accepted.
        var rotated = GitHubSender.NewDeliveryId();
        using var accepted = await _github.SendAsync("issues", rotated, signedBody,
            GitHubSignature.Compute(WebhookFixture.OldSecret, Encoding.UTF8.GetBytes(signedBody)));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await _github.WaitForAsync(rotated, "processed");
    }

    [Fact]
    public async Task Ping_answers_200_and_is_not_recorded()
    {
        var id = GitHubSender.NewDeliveryId();
        using var ping = await _github.SendAsync("ping", id, "{\"zen\":\"Keep it logically awesome.\",\"hook_id\":1}");
        Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
        Assert.Equal("pong", (await ping.JsonAsync()).Str("status"));
        Assert.Null(await _github.GetDeliveryAsync(id));
        using var unsigned = await _github.SendAsync("ping", id, "{}", signature: "");
        await unsigned.AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
    }

    [Fact]
    public async Task Deliveries_of_other_repositories_and_events_are_recorded_as_ignored()
    {
        var number = WebhookFixture.NewIssueNumber();
        var other = GitHubSender.NewDeliveryId();
        var receipt = await _github.DeliverAsync("issues", other, GitHubSender.IssuePayload("opened", "octo/elsewhere", number, T0));
        Assert.Equal("ignored", receipt.Str("status"));
        var row = (await _github.GetDeliveryAsync(other))!.Value;
        Assert.Equal("octo/elsewhere", row.Str("repository"));
        Assert.Contains("not configured", row.Str("outcome"));
        Assert.Null(await ActiveClaimAsync($"github:octo/elsewhere#{number}"));

        var edited = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", edited, GitHubSender.IssuePayload("edited", Repo, number, T0));
        Assert.Contains("not handled", (await _github.WaitForAsync(edited, "ignored")).Str("outcome"));

        using var form = await _github.SendAsync("issues", GitHubSender.NewDeliveryId(), "not json at all");
        await form.AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT");
    }

    [Fact]
    public async Task A_comment_touches_the_active_claim_and_is_ignored_without_one()
    {
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var opened = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", opened, GitHubSender.IssuePayload("opened", Repo, number, T0));
        await _github.WaitForAsync(opened, "processed");
        var before = (await ActiveClaimAsync(key))!.Value.GetProperty("last_activity_at").GetDateTimeOffset();

        var comment = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issue_comment", comment, GitHubSender.CommentPayload(Repo, number, T0.AddMinutes(1)));
        Assert.Contains("touched", (await _github.WaitForAsync(comment, "processed")).Str("outcome"));
        Assert.True((await ActiveClaimAsync(key))!.Value.GetProperty("last_activity_at").GetDateTimeOffset() > before);

        var nobody = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issue_comment", nobody, GitHubSender.CommentPayload(Repo, WebhookFixture.NewIssueNumber(), T0));
        Assert.Contains("no active lease", (await _github.WaitForAsync(nobody, "ignored")).Str("outcome"));
    }

    [Fact]
    public async Task A_failed_delivery_is_listed_with_its_error_and_processed_when_redelivered_or_retried()
    {
        // The sandbox name is taken by another claim of the webhook's tenant (names are unique per tenant): the webhook's
        // acquire fails with CONFLICT until it is freed.
        var number = WebhookFixture.NewIssueNumber();
        var blocker = $"test:blocker-{number}";
        using (var block = await _admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(blocker)}?tenant={WebhookFixture.Tenant}", new { name = $"claude-issue-{number}" }))
        {
            Assert.Equal(HttpStatusCode.Created, block.StatusCode);
        }
        var id = GitHubSender.NewDeliveryId();
        var body = GitHubSender.IssuePayload("opened", Repo, number, T0);
        await _github.DeliverAsync("issues", id, body);
        var failed = await _github.WaitForAsync(id, "failed");
        Assert.Contains("CONFLICT", failed.Str("error"));
        Assert.Equal(2, failed.GetProperty("attempts").GetInt32());

        using (var list = await _admin.GetAsync("/v1/admin/webhooks/deliveries?status=failed&limit=1000"))
        {
            var items = (await list.JsonAsync()).GetProperty("items").EnumerateArray().ToList();
            Assert.Contains(items, d => d.Str("delivery_id") == id && d.Str("error").Contains("CONFLICT"));
            Assert.All(items, d => Assert.Equal("failed", d.Str("status")));
        }

        Assert.Equal(HttpStatusCode.OK, (await _admin.DeleteAsync($"/v1/claims/{ApiAssert.Key(blocker)}?tenant={WebhookFixture.Tenant}")).StatusCode);
        var redelivered = await _github.DeliverAsync("issues", id, body);
        Assert.False(redelivered.GetProperty("duplicate").GetBoolean());
        Assert.Equal("received", redelivered.Str("status"));
        await _github.WaitForAsync(id, "processed");
        Assert.Single(SandboxesNamed($"claude-issue-{number}"));
        await (await _admin.PostAsync($"/v1/admin/webhooks/deliveries/{id}/retry", null)).AssertErrorAsync(HttpStatusCode.Conflict, "CONFLICT");

        // The same, through the admin retry.
        var number2 = WebhookFixture.NewIssueNumber();
        var blocker2 = $"test:blocker-{number2}";
        (await _admin.PutAsJsonAsync($"/v1/claims/{ApiAssert.Key(blocker2)}?tenant={WebhookFixture.Tenant}", new { name = $"claude-issue-{number2}" })).Dispose();
        var id2 = GitHubSender.NewDeliveryId();
        await _github.DeliverAsync("issues", id2, GitHubSender.IssuePayload("opened", Repo, number2, T0));
        await _github.WaitForAsync(id2, "failed");
        (await _admin.DeleteAsync($"/v1/claims/{ApiAssert.Key(blocker2)}?tenant={WebhookFixture.Tenant}")).Dispose();
        using (var retry = await _admin.PostAsync($"/v1/admin/webhooks/deliveries/{id2}/retry", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
            Assert.Equal("received", (await retry.JsonAsync()).Str("status"));
        }
        await _github.WaitForAsync(id2, "processed");
        Assert.NotNull(await ActiveClaimAsync(WebhookFixture.KeyOf(number2)));
        await (await _admin.PostAsync("/v1/admin/webhooks/deliveries/no-such-delivery/retry", null)).AssertErrorAsync(HttpStatusCode.NotFound, "NOT_FOUND");
    }

    [Fact]
    public async Task The_admin_view_needs_the_admin_scope_and_checks_its_filters()
    {
        await (await fixture.Gateway.Anonymous().GetAsync("/v1/admin/webhooks/deliveries")).AssertErrorAsync(HttpStatusCode.Unauthorized, "UNAUTHENTICATED");
        var tenant = fixture.Gateway.Client(await fixture.Gateway.MintTokenAsync("t-" + Guid.NewGuid().ToString("N")[..10]));
        await (await tenant.GetAsync("/v1/admin/webhooks/deliveries")).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        await (await tenant.PostAsync("/v1/admin/webhooks/deliveries/x/retry", null)).AssertErrorAsync(HttpStatusCode.Forbidden, "FORBIDDEN");
        var bad = await (await _admin.GetAsync("/v1/admin/webhooks/deliveries?status=done")).AssertErrorAsync(HttpStatusCode.BadRequest, "INVALID_ARGUMENT");
        Assert.Equal("status", bad.Str("field"));
        using var ok = await _admin.GetAsync("/v1/admin/webhooks/deliveries?status=processed&limit=5");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.True((await ok.JsonAsync()).GetProperty("items").GetArrayLength() <= 5);
    }

    [Fact]
    public async Task The_same_body_under_a_new_delivery_id_is_recognised_as_a_redelivery_and_not_processed_again()
    {
        var number = WebhookFixture.NewIssueNumber();
        var key = WebhookFixture.KeyOf(number);
        var body = GitHubSender.IssuePayload("opened", Repo, number, T0);
        var first = GitHubSender.NewDeliveryId();
        Assert.False((await _github.DeliverAsync("issues", first, body)).GetProperty("duplicate").GetBoolean());
        await _github.WaitForAsync(first, "processed");

        var again = GitHubSender.NewDeliveryId();
        var receipt = await _github.DeliverAsync("issues", again, body);
        Assert.True(receipt.GetProperty("duplicate").GetBoolean());
        Assert.Equal("processed", receipt.Str("status"));
        Assert.Null(await _github.GetDeliveryAsync(again)); // nothing new to process
        Assert.Equal(1, (await _github.GetDeliveryAsync(first))!.Value.GetProperty("redeliveries").GetInt32());
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM broker_webhook_deliveries WHERE payload_sha256 = sha256(convert_to($1, 'UTF8'))", body));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM broker_audit_log WHERE entity_id = $1 AND event = 'lease.acquired'", ClaimId.Of(WebhookFixture.Tenant, key)));
    }

    [Fact]
    public async Task A_body_over_one_megabyte_is_413_in_the_error_shape_and_records_nothing()
    {
        var number = WebhookFixture.NewIssueNumber();
        // A valid payload padded past 1 MB with whitespace, correctly signed: refused for its size alone.
        var body = GitHubSender.IssuePayload("opened", Repo, number, T0) + new string(' ', 1024 * 1024);
        var id = GitHubSender.NewDeliveryId();
        using (var sized = await _github.SendAsync("issues", id, body, expectContinue: true))
        {
            await sized.AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge, "PAYLOAD_TOO_LARGE");
        }

        // Without a Content-Length (chunked), the read stops at the limit.
        var bytes = Encoding.UTF8.GetBytes(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/webhooks/github") { Content = new StreamContent(new MemoryStream(bytes)) };
        request.Headers.TransferEncodingChunked = true;
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-GitHub-Event", "issues");
        request.Headers.Add("X-GitHub-Delivery", id);
        request.Headers.Add(GitHubSignature.Header, GitHubSignature.Compute(WebhookFixture.Secret, bytes));
        using (var chunked = await fixture.Gateway.Anonymous().SendAsync(request))
        {
            await chunked.AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge, "PAYLOAD_TOO_LARGE");
        }
        Assert.Null(await _github.GetDeliveryAsync(id));
        Assert.Null(await ActiveClaimAsync(WebhookFixture.KeyOf(number)));
    }
}
