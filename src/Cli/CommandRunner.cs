using System.CommandLine;
using SandboxBroker.Client;

namespace SandboxBroker.Cli;

/// <summary>What a command's action gets: the parsed line, the output, and a client built from the resolved settings.</summary>
public sealed class CommandContext(ParseResult parse, Output output, CancellationToken ct) : IDisposable
{
    private SandboxBrokerClient? _client;

    public ParseResult Parse { get; } = parse;
    public Output Output { get; } = output;
    public CancellationToken Cancellation { get; } = ct;

    /// <summary>Retries the client makes, shown to people (a script sees only the outcome and the exit code).</summary>
    public Action<BrokerRetry>? OnRetry { get; set; }

    public T Value<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Value<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    public SandboxBrokerClient Client => _client ??= new SandboxBrokerClient(ClientOptions());

    public CliSettings Settings => CliSettings.Resolve(Parse.GetValue(GlobalOptions.Url), Parse.GetValue(GlobalOptions.Token));

    private SandboxBrokerClientOptions ClientOptions()
    {
        var settings = Settings;
        return new SandboxBrokerClientOptions
        {
            BaseAddress = settings.Url,
            Token = settings.Token,
            OnRetry = retry =>
            {
                OnRetry?.Invoke(retry);
                if (OnRetry is null && !Output.Json)
                {
                    Output.Note($"{retry.Operation}: {(retry.Status is { } s ? $"HTTP {s}" : retry.Failure)}; retrying in {retry.Delay.TotalSeconds:0.#}s");
                }
            },
        };
    }

    public void Dispose() => _client?.Dispose();
}

/// <summary>Runs a command's body and turns every failure into a message and an exit code (<see cref="ExitCodes"/>).</summary>
public static class CommandRunner
{
    public static void Action(this Command command, Func<CommandContext, Task> body) =>
        command.SetAction((parse, ct) => RunAsync(parse, ct, body));

    public static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<CommandContext, Task> body)
    {
        var output = new Output(parse.GetValue(GlobalOptions.Json), TimeProvider.System);
        using var context = new CommandContext(parse, output, ct);
        try
        {
            await body(context);
            return ExitCodes.Ok;
        }
        catch (BrokerApiException e)
        {
            if (output.Json)
            {
                output.WriteJson(new { error = new { code = e.Code, message = e.Message, request_id = e.RequestId, field = e.Field,
                    retry_after = (int?)e.RetryAfter?.TotalSeconds, status = (int)e.Status } });
            }
            var where = e.Field is null ? "" : $" [{e.Field}]";
            var retry = e.RetryAfter is { } after ? $"; retry after {after.TotalSeconds:0}s" : "";
            Output.Note($"sandboxbroker: {e.Code}{where}: {e.Message}{retry} (HTTP {(int)e.Status}, request {e.RequestId ?? "-"})");
            return ExitCodes.For(e);
        }
        catch (UsageException e)
        {
            Output.Note($"sandboxbroker: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException)
        {
            Output.Note($"sandboxbroker: cannot reach the broker at {SafeUrl(context)}: {e.Message}");
            return ExitCodes.Transient;
        }
        catch (Npgsql.NpgsqlException e)
        {
            Output.Note($"sandboxbroker: Postgres: {e.Message}");
            return ExitCodes.Transient;
        }
    }

    private static string SafeUrl(CommandContext context)
    {
        try
        {
            return context.Settings.Url.ToString();
        }
        catch (UsageException)
        {
            return "?";
        }
    }
}
