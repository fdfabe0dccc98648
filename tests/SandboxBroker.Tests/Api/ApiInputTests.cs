using SandboxBroker.Gateway.Api;

namespace SandboxBroker.Tests.Api;

/// <summary>The one check of strings at the edge, on its own.</summary>
public sealed class ApiInputTests
{
    [Theory]
    [InlineData("github:octo/repo#42")]
    [InlineData("Zoë's sandbox ✓")]
    [InlineData("emoji \U0001F600 pair")]
    [InlineData("")]
    public void Text_without_control_characters_passes(string value)
    {
        Assert.Equal(-1, ApiInput.IndexOfForbidden(value));
        Assert.Equal(value, ApiInput.Text(value, "f"));
        Assert.Equal(value, ApiInput.Printable(value));
    }

    [Theory]
    [InlineData("a\0b", 1)]
    [InlineData("ab\t", 2)]
    [InlineData("\nx", 0)]
    [InlineData("x\u007F", 1)]
    [InlineData("x\u0085", 1)]
    [InlineData("x\u009F", 1)]
    public void Control_characters_are_refused_naming_the_field(string value, int at) => AssertRefused(value, at);

    [Fact]
    public void Unpaired_surrogates_are_refused_naming_the_field()
    {
        // Built here, not as theory data: the test framework's serialization of theory data replaces lone surrogates.
        AssertRefused("a" + '\ud800' + "b", 1);
        AssertRefused("a" + '\udc00', 1);
        AssertRefused("\U0001F600" + '\ud83d', 2);
        AssertRefused('\udc00' + "\U0001F600", 0);
    }

    private static void AssertRefused(string value, int at)
    {
        Assert.Equal(at, ApiInput.IndexOfForbidden(value));
        var refused = Assert.Throws<ApiErrorException>(() => ApiInput.Text(value, "owner"));
        Assert.Equal((400, "INVALID_ARGUMENT", "owner"), (refused.Error.Status, refused.Error.Code, refused.Error.Field));
        Assert.Contains($"position {at}", refused.Error.Message);
        Assert.Equal(-1, ApiInput.IndexOfForbidden(ApiInput.Printable(value)));
    }

    [Fact]
    public void Null_is_not_refused_by_the_text_check()
    {
        Assert.Null(ApiInput.Text(null, "owner"));
    }
}
