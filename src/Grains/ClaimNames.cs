using System.Text;

namespace SandboxBroker.Grains;

/// <summary>
/// Renders a claim's sandbox name template: <c>{number}</c> (the digits after the key's last '#'),
/// <c>{repo}</c> (the path segment before '#'), <c>{key}</c> (the whole key). The result is lower-cased
/// and reduced to a-z, 0-9 and '-', at most 63 characters (a DNS label, valid at every provider).
/// </summary>
public static class ClaimNames
{
    public const int MaxLength = 63;

    public static string Render(string template, string claimKey)
    {
        var hash = claimKey.LastIndexOf('#');
        var number = hash >= 0 ? new string(claimKey[(hash + 1)..].TakeWhile(char.IsAsciiDigit).ToArray()) : "";
        var beforeHash = hash >= 0 ? claimKey[..hash] : claimKey;
        var repo = beforeHash[(beforeHash.LastIndexOf('/') + 1)..];
        var rendered = template.Replace("{number}", number).Replace("{repo}", repo).Replace("{key}", claimKey);
        var name = Sanitize(rendered);
        if (name.Length == 0)
        {
            throw new BrokerException(ErrorCodes.InvalidArgument, $"name template '{template}' renders to an empty name for key '{claimKey}'") { Field = "name" };
        }
        return name;
    }

    public static string Sanitize(string value)
    {
        var builder = new StringBuilder(value.Length);
        foreach (var c in value.ToLowerInvariant())
        {
            var mapped = char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) ? c : '-';
            if (mapped == '-' && (builder.Length == 0 || builder[^1] == '-'))
            {
                continue;
            }
            builder.Append(mapped);
        }
        var name = builder.ToString().TrimEnd('-');
        return name.Length > MaxLength ? name[..MaxLength].TrimEnd('-') : name;
    }
}
