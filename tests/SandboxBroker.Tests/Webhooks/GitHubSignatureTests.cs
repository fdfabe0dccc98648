using System.Text;
using SandboxBroker.Gateway.Webhooks;

namespace SandboxBroker.Tests.Webhooks;

/// <summary>X-Hub-Signature-256 verification, without a cluster.</summary>
public sealed class GitHubSignatureTests
{
    // GitHub's published test values (docs.github.com, "Validating webhook deliveries").
    private const string DocsSecret = "It's a Secret to Everybody";
    private const string DocsPayload = "Hello, World!";
    private const string DocsSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void GitHubs_published_test_vector_verifies()
    {
        Assert.Equal(DocsSignature, GitHubSignature.Compute(DocsSecret, Bytes(DocsPayload)));
        Assert.True(GitHubSignature.Verify(DocsSignature, Bytes(DocsPayload), [DocsSecret]));
    }

    [Fact]
    public void Any_configured_secret_verifies_during_a_rotation()
    {
        Assert.True(GitHubSignature.Verify(DocsSignature, Bytes(DocsPayload), ["the-new-secret", DocsSecret]));
        Assert.True(GitHubSignature.Verify(DocsSignature, Bytes(DocsPayload), [DocsSecret, "the-new-secret"]));
    }

    [Theory]
    [InlineData("Hello, World?")]          // tampered body
    [InlineData("Hello, World! ")]
    [InlineData("")]
    public void A_changed_body_does_not_verify(string body) =>
        Assert.False(GitHubSignature.Verify(DocsSignature, Bytes(body), [DocsSecret]));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]          // no prefix
    [InlineData("sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]     // another algorithm
    [InlineData("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1")]    // one digit short
    [InlineData("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1z")]   // not hex
    [InlineData("sha256=857107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")]   // one digit off
    public void A_missing_or_malformed_or_wrong_signature_does_not_verify(string? header) =>
        Assert.False(GitHubSignature.Verify(header, Bytes(DocsPayload), [DocsSecret]));

    [Fact]
    public void Nothing_verifies_without_a_secret_or_under_another_secret()
    {
        Assert.False(GitHubSignature.Verify(DocsSignature, Bytes(DocsPayload), []));
        Assert.False(GitHubSignature.Verify(DocsSignature, Bytes(DocsPayload), ["It's a secret to everybody"]));
    }

    [Fact]
    public void Upper_case_hex_verifies_like_lower_case() =>
        Assert.True(GitHubSignature.Verify("sha256=" + DocsSignature["sha256=".Length..].ToUpperInvariant(), Bytes(DocsPayload), [DocsSecret]));
}
