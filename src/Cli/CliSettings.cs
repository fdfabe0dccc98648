using System.Text.Json;
using System.Text.Json.Serialization;
using SandboxBroker.Client;

namespace SandboxBroker.Cli;

/// <summary>
/// Where the broker is and which token to use: the flag, else the environment (SANDBOXBROKER_URL, SANDBOXBROKER_TOKEN),
/// else the config file (<c>$XDG_CONFIG_HOME/sandboxbroker/config.json</c>, by default <c>~/.config/…</c>, or the file
/// SANDBOXBROKER_CONFIG names), else the gateway's default address and no token.
/// </summary>
public sealed record CliSettings(Uri Url, string? Token)
{
    public const string UrlVariable = "SANDBOXBROKER_URL";
    public const string TokenVariable = "SANDBOXBROKER_TOKEN";
    public const string ConfigVariable = "SANDBOXBROKER_CONFIG";

    public static CliSettings Resolve(string? url, string? token)
    {
        var file = ConfigFile.Load(ConfigFile.PathFromEnvironment());
        var chosenUrl = First(url, Environment.GetEnvironmentVariable(UrlVariable), file?.Url);
        var chosenToken = First(token, Environment.GetEnvironmentVariable(TokenVariable), file?.Token);
        if (chosenUrl is null)
        {
            return new CliSettings(SandboxBrokerClientOptions.DefaultBaseAddress, chosenToken);
        }
        return Uri.TryCreate(chosenUrl, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https"
            ? new CliSettings(parsed, chosenToken)
            : throw new UsageException($"--url: '{chosenUrl}' is not an http(s) URL");
    }

    private static string? First(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
}

/// <summary>The config file: <c>{"url": "http://…", "token": "sbk_…"}</c>.</summary>
public sealed record ConfigFile([property: JsonPropertyName("url")] string? Url, [property: JsonPropertyName("token")] string? Token)
{
    public static string PathFromEnvironment()
    {
        if (Environment.GetEnvironmentVariable(CliSettings.ConfigVariable) is { Length: > 0 } explicitPath)
        {
            return explicitPath;
        }
        var configHome = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(configHome, "sandboxbroker", "config.json");
    }

    /// <summary>The file's settings, or null when there is none; a file that is not that JSON is a usage error, not ignored.</summary>
    public static ConfigFile? Load(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<ConfigFile>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new UsageException($"config file {path}: {e.Message}");
        }
    }
}
