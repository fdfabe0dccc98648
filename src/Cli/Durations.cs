using System.Globalization;

namespace SandboxBroker.Cli;

/// <summary>Durations on the command line: whole seconds (<c>3600</c>) or a number with s, m, h or d (<c>90s</c>, <c>15m</c>, <c>2h</c>, <c>7d</c>).</summary>
public static class Durations
{
    public static int? Seconds(string? text, string option)
    {
        if (text is null)
        {
            return null;
        }
        var unit = text.Length > 0 && char.IsAsciiLetter(text[^1]) ? char.ToLowerInvariant(text[^1]) : 's';
        var number = char.IsAsciiLetter(text.LastOrDefault()) ? text[..^1] : text;
        var factor = unit switch { 's' => 1, 'm' => 60, 'h' => 3600, 'd' => 86400, _ => 0 };
        return factor > 0 && long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 &&
               value * factor <= int.MaxValue
            ? (int)(value * factor)
            : throw new UsageException($"{option}: '{text}' is not a duration (whole seconds, or a number with s, m, h or d, e.g. 15m)");
    }

    /// <summary>A duration for people: 45s, 12m, 3h 5m, 2d 4h.</summary>
    public static string Format(TimeSpan span)
    {
        var abs = span.Duration();
        var text = abs.TotalSeconds < 60 ? $"{(int)abs.TotalSeconds}s"
            : abs.TotalMinutes < 60 ? $"{(int)abs.TotalMinutes}m"
            : abs.TotalHours < 24 ? (abs.Minutes == 0 ? $"{(int)abs.TotalHours}h" : $"{(int)abs.TotalHours}h {abs.Minutes}m")
            : abs.Hours == 0 ? $"{(int)abs.TotalDays}d" : $"{(int)abs.TotalDays}d {abs.Hours}h";
        return span < TimeSpan.Zero ? "-" + text : text;
    }
}
