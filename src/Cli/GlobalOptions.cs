using System.CommandLine;

namespace SandboxBroker.Cli;

/// <summary>The options every command takes (declared once on the root, recursive).</summary>
public static class GlobalOptions
{
    public static readonly Option<string?> Url = new("--url")
    {
        Description = $"the gateway's address (else ${CliSettings.UrlVariable}, the config file, http://127.0.0.1:8080)",
        Recursive = true,
    };

    public static readonly Option<string?> Token = new("--token")
    {
        Description = $"the bearer token (else ${CliSettings.TokenVariable}, then the config file)",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json") { Description = "print the API's JSON instead of tables", Recursive = true };
}
