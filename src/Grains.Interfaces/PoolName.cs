namespace SandboxBroker;

/// <summary>What a pool may be called: the one rule the pool grain and the REST API both check.</summary>
public static class PoolName
{
    public const int MaxLength = 63;

    public const string Rule = "a pool name is 1-63 characters of a-z, 0-9 and '-'";

    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= MaxLength } && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');
}
