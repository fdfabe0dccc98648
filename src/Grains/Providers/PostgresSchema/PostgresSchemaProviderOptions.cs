namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>The "Providers:PostgresSchema" section. The provider exists only when ConnectionString is set.</summary>
public sealed class PostgresSchemaProviderOptions
{
    public const string Section = "Providers:PostgresSchema";

    /// <summary>
    /// An Npgsql connection string to the database sandboxes live in, as a role that may CREATE ROLE and CREATE SCHEMA
    /// and SET ROLE to the roles it creates (a superuser, or on PostgreSQL 16+ a CREATEROLE role with
    /// createrole_self_grant = 'set'). Use a database of its own, not the broker's.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>The template SQL file run in each new schema when the pool names none (its Template is a file path).</summary>
    public string? TemplateFile { get; set; }

    /// <summary>What clients are told to connect to; defaults to the host and port of the connection string.</summary>
    public string? ClientHost { get; set; }

    public int? ClientPort { get; set; }

    /// <summary>Connections one sandbox role may hold at once.</summary>
    public int ConnectionLimit { get; set; } = 10;

    /// <summary>Schemas read per query when listing.</summary>
    public int PageSize { get; set; } = 100;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ConnectionString);
}
