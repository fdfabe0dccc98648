using System.Text;
using SandboxBroker.Gateway.Webhooks;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>GitHub events to intents, without a cluster.</summary>
public sealed class IssueEventMapperTests
{
    private const string Repo = "octo/widgets";
    private static readonly DateTimeOffset T = new(2024, 5, 1, 12, 30, 15, TimeSpan.Zero);

    private static WebhookSettings Settings(string? trigger = null, string template = "claude-issue-{number}") =>
        new() { Repositories = [Repo], TriggerLabel = trigger, NameTemplate = template };

    private static MappedEvent Map(string eventName, string payload, WebhookSettings? settings = null) =>
        IssueEventMapper.Map(eventName, Encoding.UTF8.GetBytes(payload), settings ?? Settings());

    [Theory]
    [InlineData("opened")]
    [InlineData("reopened")]
    public void Opened_and_reopened_acquire_the_issue_key_with_name_and_labels(string action)
    {
        var mapped = Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload(action, Repo, 42, T)));
        Assert.Equal(IssueIntentKind.Acquire, mapped.Kind);
        Assert.Equal("github:octo/widgets#42", mapped.ClaimKey);
        Assert.Equal("claude-issue-42", mapped.Name);
        Assert.Equal(T, mapped.UpdatedAt);
        Assert.Equal(Repo, mapped.Labels[IssueEventMapper.LabelRepository]);
        Assert.Equal("42", mapped.Labels[IssueEventMapper.LabelIssue]);
        Assert.Equal($"issues.{action}", mapped.Description);
    }

    [Theory]
    [InlineData("closed")]
    [InlineData("deleted")]
    [InlineData("transferred")]
    public void Closed_deleted_and_transferred_release_the_issue_key(string action)
    {
        var mapped = Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload(action, Repo, 7, T, state: "closed")));
        Assert.Equal(IssueIntentKind.Release, mapped.Kind);
        Assert.Equal("github:octo/widgets#7", mapped.ClaimKey);
    }

    [Fact]
    public void A_comment_on_an_issue_touches_and_one_on_a_pull_request_is_ignored()
    {
        var touch = Assert.IsType<IssueEvent>(Map("issue_comment", GitHubSender.CommentPayload(Repo, 9, T)));
        Assert.Equal(IssueIntentKind.Touch, touch.Kind);
        Assert.Equal("github:octo/widgets#9", touch.ClaimKey);
        Assert.Contains("pull request", Assert.IsType<IgnoredEvent>(Map("issue_comment", GitHubSender.CommentPayload(Repo, 9, T, pullRequest: true))).Reason);
    }

    [Theory]
    [InlineData("issues", "edited")]
    [InlineData("issues", "assigned")]
    [InlineData("issues", "labeled")]       // no trigger label configured
    [InlineData("push", "opened")]
    [InlineData("pull_request", "opened")]
    public void Other_events_and_actions_are_ignored(string eventName, string action) =>
        Assert.IsType<IgnoredEvent>(Map(eventName, GitHubSender.IssuePayload(action, Repo, 1, T, label: "bug")));

    [Fact]
    public void Repositories_not_configured_are_ignored_and_matching_is_case_insensitive()
    {
        Assert.Contains("not configured", Assert.IsType<IgnoredEvent>(Map("issues", GitHubSender.IssuePayload("opened", "octo/other", 1, T))).Reason);
        Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("opened", "Octo/Widgets", 1, T)));
        Assert.IsType<IgnoredEvent>(Map("issues", GitHubSender.IssuePayload("opened", Repo, 1, T), new WebhookSettings()));
        Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("opened", "any/repo", 1, T), new WebhookSettings { Repositories = ["*"] }));
    }

    [Fact]
    public void With_a_trigger_label_only_labelled_issues_acquire_and_the_label_drives_the_claim()
    {
        var settings = Settings(trigger: "agent");
        Assert.IsType<IgnoredEvent>(Map("issues", GitHubSender.IssuePayload("opened", Repo, 3, T), settings));
        Assert.Equal(IssueIntentKind.Acquire, Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("opened", Repo, 3, T, labels: ["bug", "Agent"]), settings)).Kind);
        Assert.Equal(IssueIntentKind.Acquire, Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("labeled", Repo, 3, T, labels: ["agent"], label: "agent"), settings)).Kind);
        Assert.Equal(IssueIntentKind.Release, Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("unlabeled", Repo, 3, T, label: "agent"), settings)).Kind);
        Assert.IsType<IgnoredEvent>(Map("issues", GitHubSender.IssuePayload("labeled", Repo, 3, T, label: "bug"), settings));
        Assert.IsType<IgnoredEvent>(Map("issues", GitHubSender.IssuePayload("unlabeled", Repo, 3, T, label: "bug"), settings));
        Assert.Contains("closed", Assert.IsType<IgnoredEvent>(Map("issues", GitHubSender.IssuePayload("labeled", Repo, 3, T, state: "closed", label: "agent"), settings)).Reason);
        Assert.Equal(IssueIntentKind.Release, Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("closed", Repo, 3, T, state: "closed"), settings)).Kind);
    }

    [Fact]
    public void The_name_template_takes_number_repo_and_owner()
    {
        var mapped = Assert.IsType<IssueEvent>(Map("issues", GitHubSender.IssuePayload("opened", Repo, 12, T), Settings(template: "{owner}-{repo}-{number}")));
        Assert.Equal("octo-widgets-12", mapped.Name);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"action\":\"opened\",\"repository\":{\"full_name\":\"octo/widgets\"}}")]                                              // no issue
    [InlineData("{\"action\":\"opened\",\"repository\":{\"full_name\":\"octo/widgets\"},\"issue\":{\"number\":1}}")]                      // no updated_at
    [InlineData("{\"action\":\"opened\",\"repository\":{\"full_name\":\"octo/widgets\"},\"issue\":{\"number\":\"1\",\"updated_at\":\"2024-01-01T00:00:00Z\"}}")]
    [InlineData("{\"action\":\"opened\",\"repository\":{\"full_name\":\"octo/widgets\"},\"issue\":{\"number\":1,\"updated_at\":\"yesterday\"}}")]
    [InlineData("{\"action\":\"opened\",\"issue\":{\"number\":1,\"updated_at\":\"2024-01-01T00:00:00Z\"}}")]                             // no repository
    public void Malformed_payloads_are_refused(string payload) =>
        Assert.Throws<InvalidPayloadException>(() => Map("issues", payload));
}
