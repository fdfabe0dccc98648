using System.Diagnostics.CodeAnalysis;

namespace SandboxBroker;

/// <summary>
/// A claim key names one unit of work: <c>github:octo/repo#42</c>, <c>track:lab-7/student-3</c>,
/// <c>ctx:tenant/conversation/path</c>. Keys are 1-200 characters of printable ASCII from
/// <c>A-Z a-z 0-9</c> and <c>: / # . _ - @ + = ~</c>, with no spaces.
/// </summary>
public static class ClaimKey
{
    public const int MaxLength = 200;
    public const string AllowedPunctuation = ":/#._-@+=~";

    public static bool IsValid(string? key, [NotNullWhen(false)] out string? reason)
    {
        if (string.IsNullOrEmpty(key))
        {
            reason = "claim key must not be empty";
            return false;
        }
        if (key.Length > MaxLength)
        {
            reason = $"claim key must be at most {MaxLength} characters";
            return false;
        }
        foreach (var c in key)
        {
            if (!char.IsAsciiLetterOrDigit(c) && !AllowedPunctuation.Contains(c))
            {
                reason = $"claim key may contain only letters, digits and {AllowedPunctuation} (found '{(char.IsControl(c) ? "\\u" + ((int)c).ToString("x4") : c.ToString())}')";
                return false;
            }
        }
        reason = null;
        return true;
    }

    public static void Validate(string? key)
    {
        if (!IsValid(key, out var reason))
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, reason) { Field = "key" };
        }
    }
}
