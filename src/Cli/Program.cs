using System.CommandLine;
using SandboxBroker.Cli;
using SandboxBroker.Cli.Commands;
using Spectre.Console;

// sandboxbroker: the broker's REST API from a shell. Exit codes: see ExitCodes (README, "Command line").
var root = new RootCommand("SandboxBroker: one sandbox per claim key, from the command line")
{
    GlobalOptions.Url,
    GlobalOptions.Token,
    GlobalOptions.Json,
};
root.Subcommands.Add(ClaimCommands.Create());
root.Subcommands.Add(SandboxCommands.Create());
root.Subcommands.Add(PoolCommands.Create());
root.Subcommands.Add(TokenCommands.Create());
root.Subcommands.Add(AdminCommands.Create());
root.Subcommands.Add(WebhookCommands.Create());
root.Subcommands.Add(WatchCommand.Create());

if (Console.IsOutputRedirected)
{
    // Piped into a file or another program there is no terminal width; 80 columns would wrap keys and ids inside cells.
    AnsiConsole.Profile.Width = 240;
}

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        await Console.Error.WriteLineAsync($"sandboxbroker: {error.Message}");
    }
    await Console.Error.WriteLineAsync("(--help shows the commands and their options)");
    return ExitCodes.Usage;
}
return await parse.InvokeAsync();
