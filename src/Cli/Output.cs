using System.Text.Json;
using SandboxBroker.Client;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace SandboxBroker.Cli;

/// <summary>What a command prints: tables for people, or with --json the API's JSON for scripts (nothing else on stdout).</summary>
public sealed class Output(bool json, TimeProvider time)
{
    private static readonly JsonSerializerOptions Indented = new(BrokerJson.Options) { WriteIndented = true };

    public bool Json { get; } = json;

    /// <summary>True when a person watches: progress and live views are shown only then.</summary>
    public bool Interactive => !Json && !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    public DateTimeOffset Now => time.GetUtcNow();

    public void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Indented));

    /// <summary>With --json the value; otherwise what <paramref name="render"/> draws.</summary>
    public void Write<T>(T value, Func<T, IRenderable> render)
    {
        if (Json)
        {
            WriteJson(value);
        }
        else
        {
            AnsiConsole.Write(render(value));
        }
    }

    /// <summary>A note for people (stderr), never mixed into what a script reads.</summary>
    public static void Note(string text) => Console.Error.WriteLine(text);

    public static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(column));
        }
        return table;
    }

    /// <summary>A row of plain text: values from the broker are never read as Spectre markup.</summary>
    public static void Row(Table table, params string?[] cells) => table.AddRow(cells.Select(c => (IRenderable)new Text(c ?? "-")));

    /// <summary>A two-column "field: value" view of one thing.</summary>
    public static Grid Fields(IEnumerable<(string Name, string? Value)> fields)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        foreach (var (name, value) in fields.Where(f => f.Value is not null))
        {
            grid.AddRow(new Text(name, new Style(decoration: Decoration.Bold)), new Text(value!));
        }
        return grid;
    }

    /// <summary>A time in UTC with how far it is from now: "2026-12-01 14:05:00Z (in 59m)".</summary>
    public string When(DateTimeOffset? at)
    {
        if (at is not { } value)
        {
            return "-";
        }
        var delta = value - Now;
        var relative = delta >= TimeSpan.Zero ? $"in {Durations.Format(delta)}" : $"{Durations.Format(-delta)} ago";
        return $"{value.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z ({relative})";
    }

    public static string Labels(IReadOnlyDictionary<string, string>? labels) =>
        labels is null || labels.Count == 0 ? "-" : string.Join(", ", labels.Select(kv => $"{kv.Key}={kv.Value}"));
}
