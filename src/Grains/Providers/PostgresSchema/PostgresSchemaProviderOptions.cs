namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>The "Providers:PostgresSchema" section. The provider exists only when ConnectionString is set.</summary>
public sealed class PostgresSchemaProviderOptions
{
    public const string Section = "Providers:PostgresSchema";

    /// <summary>
    /// An Npgsql connection string to the database sandboxes live in, as a role that may CREATE ROLE and CREATE SCHEMA
    /// and create schemas owned by the roles it creates (a superuser, or on PostgreSQL 16+ a CREATEROLE role with
    /// createrole_self_grant = 'set, inherit'). Use a database of its own, not the broker's.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The only directory templates are read from: a pool's Template is a file name inside it (nothing outside it, by
    /// '..' or an absolute path, is read). Defaults to the directory of TemplateFile.
    /// </summary>
    public string? TemplateDirectory { get; set; }

    /// <summary>The template SQL file run in each new schema when the pool names none (a name in TemplateDirectory, or a path).</summary>
    public string? TemplateFile { get; set; }

    /// <summary>
    /// Databases of the same cluster that sandbox roles must not connect to (the broker's own, above all): the provider
    /// revokes PUBLIC's CONNECT on each before its first create, which also bars any other role that relied on PUBLIC.
    /// Sandbox roles are granted CONNECT on the sandbox database explicitly.
    /// </summary>
    public string[] ProtectedDatabases { get; set; } = [];

    /// <summary>What clients are told to connect to; defaults to the host and port of the connection string.</summary>
    public string? ClientHost { get; set; }

    public int? ClientPort { get; set; }

    /// <summary>Connections one sandbox role may hold at once.</summary>
    public int ConnectionLimit { get; set; } = 10;

    /// <summary>Schemas read per query when listing.</summary>
    public int PageSize { get; set; } = 100;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ConnectionString);
}
