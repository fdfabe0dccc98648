using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>
/// One Postgres schema per sandbox, <c>sbx_&lt;id&gt;</c>, owned by a login role of the same name with a generated
/// password, provisioned from a template SQL file run on a connection logged in as that role (so the template has the
/// sandbox's rights and nothing more: no <c>RESET ROLE</c> back to the provider's admin). PUBLIC has no rights on the
/// schema, so one sandbox's role cannot read another's. The broker's metadata (sandbox id, name, labels with the claim
/// key) lives in <c>sandboxbroker.sandboxes</c>, a table of the sandbox database no sandbox role can read; list reads it.
/// Stop takes the role's login away; delete drops the schema, the role and its row. The password is never stored here:
/// a repeated create sets a fresh one.
/// </summary>
public sealed class PostgresSchemaSandboxProvider : ISandboxProvider, ISandboxLabelUpdater, IAsyncDisposable
{
    public const string ProviderName = "postgres-schema";
    private const string Prefix = "sbx_";
    private const string Marker = "sandboxbroker";

    private readonly PostgresSchemaProviderOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<PostgresSchemaSandboxProvider> _logger;
    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlConnectionStringBuilder _server;
    private readonly string? _templateDirectory;
    private readonly SemaphoreSlim _catalogLock = new(1, 1);
    private bool _catalogReady;

    public PostgresSchemaSandboxProvider(IOptions<PostgresSchemaProviderOptions> options, TimeProvider time, ILogger<PostgresSchemaSandboxProvider> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _server = new NpgsqlConnectionStringBuilder(_options.ConnectionString
            ?? throw new InvalidOperationException($"{PostgresSchemaProviderOptions.Section}:ConnectionString is not set"));
        var admin = new NpgsqlConnectionStringBuilder(_server.ConnectionString) { ApplicationName = "sandboxbroker-postgres-schema" };
        _dataSource = NpgsqlDataSource.Create(admin.ConnectionString);
        var directory = _options.TemplateDirectory
            ?? (_options.TemplateFile is { Length: > 0 } file && Path.IsPathRooted(file) ? Path.GetDirectoryName(file) : null);
        _templateDirectory = directory is null ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
    }

    public string Name => ProviderName;

    /// <summary>The schema (and role) name of a broker sandbox id: lower case, [a-z0-9_] only.</summary>
    public static string SchemaFor(string sandboxId)
    {
        var clean = new string(sandboxId.ToLowerInvariant().Select(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) ? c : '_').ToArray());
        if (clean.Length == 0 || Prefix.Length + clean.Length > 63)
        {
            throw new ProviderException(ProviderName, $"'{sandboxId}' cannot name a schema", transient: false);
        }
        return Prefix + clean;
    }

    public async Task<ProviderSandbox> CreateAsync(ProviderCreateRequest request, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(request.SandboxId);
        var templateName = request.Template ?? _options.TemplateFile;
        var template = templateName is { Length: > 0 } ? await ReadTemplateAsync(templateName, cancellationToken) : null;
        var password = NewPassword();
        await EnsureCatalogAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        Metadata metadata;
        bool existed;
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock(hashtext($1))", cancellationToken, schema);
            var existing = await ReadMetadataAsync(connection, schema, cancellationToken);
            existed = existing is not null;
            if (existing is not null)
            {
                if (existing.SandboxId != request.SandboxId)
                {
                    throw new ProviderException(Name, $"schema {schema} belongs to sandbox {existing.SandboxId}, not {request.SandboxId}", transient: false);
                }
                // The password is never stored: a repeated create hands out a fresh one.
                await ExecuteFormatAsync(connection, "ALTER ROLE %I WITH LOGIN PASSWORD %L", cancellationToken, schema, password);
                metadata = existing;
                if (!metadata.TemplateApplied)
                {
                    // A create that stopped between the schema and its template: start the schema over.
                    await ExecuteFormatAsync(connection, "DROP SCHEMA IF EXISTS %I CASCADE", cancellationToken, schema);
                    await CreateSchemaAsync(connection, schema, cancellationToken);
                }
            }
            else
            {
                var roleExists = await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", cancellationToken, schema);
                await ExecuteFormatAsync(connection,
                    roleExists
                        ? "ALTER ROLE %I WITH LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD %L"
                        : $"CREATE ROLE %I WITH LOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT {_options.ConnectionLimit} PASSWORD %L",
                    cancellationToken, schema, password);
                await ExecuteFormatAsync(connection, "GRANT CONNECT ON DATABASE %I TO %I", cancellationToken, connection.Database, schema);
                await CreateSchemaAsync(connection, schema, cancellationToken);
                metadata = new Metadata(request.SandboxId, request.Name, templateName, request.Labels.ToDictionary(), _time.GetUtcNow(), TemplateApplied: template is null);
                await WriteMetadataAsync(connection, schema, metadata, cancellationToken);
            }
            await transaction.CommitAsync(cancellationToken);
        }
        if (template is not null && !metadata.TemplateApplied)
        {
            await RunTemplateAsync(schema, password, templateName!, template, cancellationToken);
            metadata = metadata with { TemplateApplied = true };
            await WriteMetadataAsync(connection, schema, metadata, cancellationToken);
        }
        _logger.LogInformation("Postgres schema {Schema} ready for sandbox {SandboxId} ({Outcome})", schema, request.SandboxId, existed ? "existing, password reset" : "created");
        return Map(schema, metadata, canLogin: true, password);
    }

    public async Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await EnsureCatalogAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        var metadata = await ReadMetadataAsync(connection, schema, cancellationToken);
        return metadata is null ? null : Map(schema, metadata, await CanLoginAsync(connection, schema, cancellationToken), password: null);
    }

    public async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await EnsureCatalogAsync(cancellationToken);
        var after = "";
        while (true)
        {
            var page = new List<(string Schema, Metadata? Metadata, bool CanLogin)>();
            await using (var connection = await OpenAsync(cancellationToken))
            await using (var command = new NpgsqlCommand(
                $"""
                SELECT n.nspname, {MetadataColumns}, coalesce(r.rolcanlogin, false)
                FROM pg_namespace n
                LEFT JOIN sandboxbroker.sandboxes m ON m.schema_name = n.nspname
                LEFT JOIN pg_roles r ON r.rolname = n.nspname
                WHERE n.nspname LIKE 'sbx\_%' AND n.nspname > $1
                ORDER BY n.nspname LIMIT $2
                """, connection))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = after });
                command.Parameters.Add(new NpgsqlParameter { Value = _options.PageSize });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    page.Add((reader.GetString(0), ReadMetadata(reader, 1), reader.GetBoolean(8)));
                }
            }
            foreach (var (schema, metadata, canLogin) in page)
            {
                if (metadata is not null && labels.All(l => metadata.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
                {
                    yield return Map(schema, metadata, canLogin, password: null);
                }
            }
            if (page.Count < _options.PageSize)
            {
                yield break;
            }
            after = page[^1].Schema;
        }
    }

    public async Task StartAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await EnsureCatalogAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        if (await ReadMetadataAsync(connection, schema, cancellationToken) is null)
        {
            throw new ProviderException(Name, $"sandbox {sandboxId} does not exist", transient: false);
        }
        await ExecuteFormatAsync(connection, "ALTER ROLE %I WITH LOGIN", cancellationToken, schema);
    }

    public async Task StopAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await using var connection = await OpenAsync(cancellationToken);
        if (await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", cancellationToken, schema))
        {
            await ExecuteFormatAsync(connection, "ALTER ROLE %I WITH NOLOGIN", cancellationToken, schema);
            await ExecuteAsync(connection, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", cancellationToken, schema);
        }
    }

    public async Task DeleteAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await using var connection = await OpenAsync(cancellationToken);
        // Two deletes of one sandbox (a retry overlapping a slow first attempt) must not race: the catalog
        // answers "tuple concurrently deleted" to the loser. A session lock serializes them; the second finds nothing.
        await ExecuteAsync(connection, "SELECT pg_advisory_lock(hashtext($1))", cancellationToken, schema);
        try
        {
            var roleExists = await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", cancellationToken, schema);
            if (roleExists)
            {
                // No new sessions, then end the open ones, so nothing the role runs outlives it.
                await ExecuteFormatAsync(connection, "ALTER ROLE %I WITH NOLOGIN", cancellationToken, schema);
                await ExecuteAsync(connection, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", cancellationToken, schema);
            }
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await ExecuteFormatAsync(connection, "DROP SCHEMA IF EXISTS %I CASCADE", cancellationToken, schema);
            if (await ScalarAsync<bool>(connection, "SELECT to_regclass('sandboxbroker.sandboxes') IS NOT NULL", cancellationToken))
            {
                await ExecuteAsync(connection, "DELETE FROM sandboxbroker.sandboxes WHERE schema_name = $1", cancellationToken, schema);
            }
            if (roleExists)
            {
                await ExecuteFormatAsync(connection, "DROP OWNED BY %I CASCADE", cancellationToken, schema);
                await ExecuteFormatAsync(connection, "DROP ROLE IF EXISTS %I", cancellationToken, schema);
            }
            await transaction.CommitAsync(cancellationToken);
        }
        finally
        {
            await ExecuteAsync(connection, "SELECT pg_advisory_unlock(hashtext($1))", CancellationToken.None, schema);
        }
        _logger.LogInformation("Dropped Postgres schema and role {Schema} of sandbox {SandboxId}", schema, sandboxId);
    }

    public async Task SetLabelsAsync(string sandboxId, string? externalId, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await EnsureCatalogAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock(hashtext($1))", cancellationToken, schema);
        var metadata = await ReadMetadataAsync(connection, schema, cancellationToken)
            ?? throw new ProviderException(Name, $"sandbox {sandboxId} does not exist", transient: false);
        var merged = new Dictionary<string, string>(metadata.Labels);
        foreach (var (key, value) in labels)
        {
            merged[key] = value;
        }
        await WriteMetadataAsync(connection, schema, metadata with { Labels = merged }, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>How much a sandbox holds: its tables and their rows (counted exactly).</summary>
    public async Task<PostgresSchemaStats?> GetStatsAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await using var connection = await OpenAsync(cancellationToken);
        var tables = new List<string>();
        await using (var command = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = schema });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                tables.Add(reader.GetString(0));
            }
        }
        if (tables.Count == 0 && await ReadMetadataAsync(connection, schema, cancellationToken) is null)
        {
            return null;
        }
        long rows = 0;
        foreach (var table in tables)
        {
            var count = await ScalarAsync<string>(connection, "SELECT format('SELECT count(*) FROM %I.%I', $1::text, $2::text)", cancellationToken, schema, table);
            rows += await ScalarAsync<long>(connection, count, cancellationToken);
        }
        return new PostgresSchemaStats(tables.Count, rows);
    }

    public ValueTask DisposeAsync()
    {
        _catalogLock.Dispose();
        return _dataSource.DisposeAsync();
    }

    /// <summary>
    /// The template's text, read only from the template directory: a pool names a file in it, never a path elsewhere
    /// (an API token that may configure pools must not read the silo's files).
    /// </summary>
    private async Task<string> ReadTemplateAsync(string name, CancellationToken cancellationToken)
    {
        if (_templateDirectory is null)
        {
            throw new ProviderException(Name, $"template '{name}' cannot be used: {PostgresSchemaProviderOptions.Section}:TemplateDirectory is not set", transient: false);
        }
        var path = Path.GetFullPath(Path.IsPathRooted(name) ? name : Path.Combine(_templateDirectory, name));
        if (!path.StartsWith(_templateDirectory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ProviderException(Name, $"template '{name}' is outside the template directory", transient: false);
        }
        try
        {
            return await File.ReadAllTextAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ProviderException(Name, $"cannot read the template '{name}': {e.Message}", transient: false, e);
        }
    }

    /// <summary>
    /// Runs the template in one transaction on a connection logged in as the sandbox's role, in its schema: what the
    /// template creates is the sandbox's, and it can do nothing the sandbox could not (a RESET ROLE stays the sandbox).
    /// </summary>
    private async Task RunTemplateAsync(string schema, string password, string templateName, string sql, CancellationToken cancellationToken)
    {
        var asSandbox = new NpgsqlConnectionStringBuilder(_server.ConnectionString)
        {
            Username = schema, Password = password, SearchPath = schema, Pooling = false, ApplicationName = "sandboxbroker-template",
        };
        try
        {
            await using var connection = new NpgsqlConnection(asSandbox.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await ExecuteAsync(connection, sql, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }
        catch (PostgresException e)
        {
            throw new ProviderException(Name, $"the template '{templateName}' failed: {e.MessageText}", transient: false, e);
        }
        catch (NpgsqlException e)
        {
            throw new ProviderException(Name, $"cannot run the template '{templateName}' as {schema}: {e.Message}", transient: true, e);
        }
    }

    private static async Task CreateSchemaAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        await ExecuteFormatAsync(connection, "CREATE SCHEMA %I AUTHORIZATION %I", cancellationToken, schema, schema);
        await ExecuteFormatAsync(connection, "REVOKE ALL ON SCHEMA %I FROM PUBLIC", cancellationToken, schema);
    }

    /// <summary>
    /// Once per provider: the broker-only metadata table (no sandbox role may read it: it holds every sandbox's claim key
    /// and labels), and PUBLIC's CONNECT revoked on the protected databases.
    /// </summary>
    private async Task EnsureCatalogAsync(CancellationToken cancellationToken)
    {
        if (_catalogReady)
        {
            return;
        }
        await _catalogLock.WaitAsync(cancellationToken);
        try
        {
            if (_catalogReady)
            {
                return;
            }
            await using var connection = await OpenAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            // Several silos start at once: CREATE ... IF NOT EXISTS alone races on the catalog's unique indexes.
            await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock(hashtext('sandboxbroker.catalog'))", cancellationToken);
            await ExecuteAsync(connection,
                """
                CREATE SCHEMA IF NOT EXISTS sandboxbroker;
                REVOKE ALL ON SCHEMA sandboxbroker FROM PUBLIC;
                CREATE TABLE IF NOT EXISTS sandboxbroker.sandboxes
                (
                    schema_name      text PRIMARY KEY,
                    sandbox_id       text        NOT NULL,
                    name             text        NOT NULL,
                    template         text,
                    labels           jsonb       NOT NULL,
                    created_at       timestamptz NOT NULL,
                    template_applied boolean     NOT NULL
                );
                REVOKE ALL ON sandboxbroker.sandboxes FROM PUBLIC;
                """, cancellationToken);
            foreach (var database in _options.ProtectedDatabases.Where(d => !string.IsNullOrWhiteSpace(d)))
            {
                try
                {
                    await ExecuteFormatAsync(connection, "REVOKE CONNECT ON DATABASE %I FROM PUBLIC", cancellationToken, database);
                }
                catch (PostgresException e)
                {
                    throw new ProviderException(Name, $"cannot protect database '{database}' from sandbox roles: {e.MessageText}", transient: false, e);
                }
            }
            await transaction.CommitAsync(cancellationToken);
            _catalogReady = true;
        }
        finally
        {
            _catalogLock.Release();
        }
    }

    private ProviderSandbox Map(string schema, Metadata metadata, bool canLogin, string? password)
    {
        var connection = new Dictionary<string, string>
        {
            ["host"] = _options.ClientHost ?? _server.Host ?? "localhost",
            ["port"] = (_options.ClientPort ?? _server.Port).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["database"] = _server.Database ?? "",
            ["search_path"] = schema,
            ["user"] = schema,
        };
        if (password is not null)
        {
            connection["password"] = password;
        }
        return new ProviderSandbox(metadata.SandboxId, schema, metadata.Name, canLogin ? ProviderSandboxState.Running : ProviderSandboxState.Stopped,
            metadata.Labels, connection, metadata.CreatedAt);
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            throw new ProviderException(Name, $"cannot reach Postgres at {_server.Host}:{_server.Port}: {e.Message}", transient: true, e);
        }
    }

    /// <summary>The metadata row's columns, then the schema's comment (where metadata lived before the table).</summary>
    private const string MetadataColumns = "m.sandbox_id, m.name, m.template, m.labels::text, m.created_at, m.template_applied, obj_description(n.oid, 'pg_namespace')";

    private async Task<Metadata?> ReadMetadataAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            $"""
            SELECT n.nspname, {MetadataColumns}
            FROM pg_namespace n LEFT JOIN sandboxbroker.sandboxes m ON m.schema_name = n.nspname
            WHERE n.nspname = $1
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = schema });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return ReadMetadata(reader, 1)
            ?? throw new ProviderException(Name, $"schema {schema} exists but is not the broker's (no metadata)", transient: false);
    }

    /// <summary>The metadata from the columns of <see cref="MetadataColumns"/> starting at <paramref name="first"/>, or null.</summary>
    private static Metadata? ReadMetadata(NpgsqlDataReader reader, int first)
    {
        if (!reader.IsDBNull(first))
        {
            return new Metadata(
                reader.GetString(first),
                reader.GetString(first + 1),
                reader.IsDBNull(first + 2) ? null : reader.GetString(first + 2),
                JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(first + 3)) ?? new(),
                reader.GetFieldValue<DateTimeOffset>(first + 4),
                reader.GetBoolean(first + 5));
        }
        return reader.IsDBNull(first + 6) ? null : ParseLegacyComment(reader.GetString(first + 6));
    }

    private static async Task<bool> CanLoginAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken) =>
        await ScalarAsync<bool?>(connection, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", cancellationToken, schema) ?? false;

    /// <summary>Writes the row; a sandbox whose metadata was a schema comment (before the table) loses the comment.</summary>
    private static async Task WriteMetadataAsync(NpgsqlConnection connection, string schema, Metadata metadata, CancellationToken cancellationToken)
    {
        await using (var command = new NpgsqlCommand(
            """
            INSERT INTO sandboxbroker.sandboxes (schema_name, sandbox_id, name, template, labels, created_at, template_applied)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
            ON CONFLICT (schema_name) DO UPDATE
            SET labels = excluded.labels, template_applied = excluded.template_applied
            """, connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = schema });
            command.Parameters.Add(new NpgsqlParameter { Value = metadata.SandboxId });
            command.Parameters.Add(new NpgsqlParameter { Value = metadata.Name });
            command.Parameters.Add(new NpgsqlParameter { Value = (object?)metadata.Template ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = JsonSerializer.Serialize(metadata.Labels) });
            command.Parameters.Add(new NpgsqlParameter { Value = metadata.CreatedAt.ToUniversalTime() });
            command.Parameters.Add(new NpgsqlParameter { Value = metadata.TemplateApplied });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await ExecuteFormatAsync(connection, "COMMENT ON SCHEMA %I IS NULL", cancellationToken, schema);
    }

    /// <summary>Metadata as schema comments held it before the broker-only table: read, never written.</summary>
    private static Metadata? ParseLegacyComment(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || !text.TrimStart().StartsWith('{'))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<LegacyComment>(text, CommentJson) is { Broker: Marker } comment
                ? new Metadata(comment.SandboxId, comment.Name, comment.Template, comment.Labels, comment.CreatedAt, TemplateApplied: true)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>DDL takes no parameters: Postgres' own format() quotes the identifiers (%I) and literals (%L).</summary>
    private static async Task ExecuteFormatAsync(NpgsqlConnection connection, string template, CancellationToken cancellationToken, params string[] arguments)
    {
        var placeholders = string.Join(", ", arguments.Select((_, i) => $"${i + 2}::text"));
        var statement = await ScalarAsync<string>(connection, $"SELECT format($1, {placeholders})", cancellationToken, [template, .. arguments]);
        await ExecuteAsync(connection, statement, cancellationToken);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is null or DBNull ? default! : (T)value;
    }

    /// <summary>32 characters from [A-Za-z0-9]: about 190 bits.</summary>
    private static string NewPassword() =>
        RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 32);

    private static readonly JsonSerializerOptions CommentJson = new(JsonSerializerDefaults.Web);

    /// <summary>What the broker keeps about a sandbox, in sandboxbroker.sandboxes.</summary>
    private sealed record Metadata(string SandboxId, string Name, string? Template, Dictionary<string, string> Labels, DateTimeOffset CreatedAt, bool TemplateApplied);

    /// <summary>What a schema's comment held before the table.</summary>
    private sealed record LegacyComment(string Broker, string SandboxId, string Name, string? Template, Dictionary<string, string> Labels, DateTimeOffset CreatedAt);
}

public sealed record PostgresSchemaStats(int Tables, long Rows);
