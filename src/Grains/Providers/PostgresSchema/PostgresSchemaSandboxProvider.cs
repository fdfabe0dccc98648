using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>
/// One Postgres schema per sandbox, <c>sbx_&lt;id&gt;</c>, owned by a login role of the same name with a generated
/// password, provisioned from a template SQL file (run as that role with search_path set to the schema). PUBLIC has no
/// rights on the schema, so one sandbox's role cannot read another's. The schema's comment holds the broker's labels
/// as JSON, which is how list finds them. Create runs in one transaction (roles and schemas are transactional), so a
/// crash leaves all or nothing. Stop takes the role's login away; delete drops the schema and the role.
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

    public PostgresSchemaSandboxProvider(IOptions<PostgresSchemaProviderOptions> options, TimeProvider time, ILogger<PostgresSchemaSandboxProvider> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _server = new NpgsqlConnectionStringBuilder(_options.ConnectionString
            ?? throw new InvalidOperationException($"{PostgresSchemaProviderOptions.Section}:ConnectionString is not set"));
        var admin = new NpgsqlConnectionStringBuilder(_server.ConnectionString) { ApplicationName = "sandboxbroker-postgres-schema" };
        _dataSource = NpgsqlDataSource.Create(admin.ConnectionString);
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
        var password = NewPassword();
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock(hashtext($1))", cancellationToken, schema);
        var existing = await ReadCommentAsync(connection, schema, cancellationToken);
        SchemaComment comment;
        if (existing is not null)
        {
            if (existing.SandboxId != request.SandboxId)
            {
                throw new ProviderException(Name, $"schema {schema} belongs to sandbox {existing.SandboxId}, not {request.SandboxId}", transient: false);
            }
            // The password is never stored: a repeated create hands out a fresh one.
            await ExecuteFormatAsync(connection, "ALTER ROLE %I WITH LOGIN PASSWORD %L", cancellationToken, schema, password);
            comment = existing;
        }
        else
        {
            var roleExists = await ScalarAsync<bool>(connection, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", cancellationToken, schema);
            await ExecuteFormatAsync(connection,
                roleExists
                    ? "ALTER ROLE %I WITH LOGIN NOINHERIT PASSWORD %L"
                    : $"CREATE ROLE %I WITH LOGIN NOINHERIT CONNECTION LIMIT {_options.ConnectionLimit} PASSWORD %L",
                cancellationToken, schema, password);
            await ExecuteFormatAsync(connection, "CREATE SCHEMA %I AUTHORIZATION %I", cancellationToken, schema, schema);
            await ExecuteFormatAsync(connection, "REVOKE ALL ON SCHEMA %I FROM PUBLIC", cancellationToken, schema);
            if ((request.Template ?? _options.TemplateFile) is { Length: > 0 } templateFile)
            {
                await RunTemplateAsync(connection, schema, templateFile, cancellationToken);
            }
            comment = new SchemaComment(Marker, request.SandboxId, request.Name, request.Template ?? _options.TemplateFile, request.Labels.ToDictionary(), _time.GetUtcNow());
            await WriteCommentAsync(connection, schema, comment, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        _logger.LogInformation("Postgres schema {Schema} ready for sandbox {SandboxId} ({Outcome})", schema, request.SandboxId, existing is null ? "created" : "existing, password reset");
        return Map(schema, comment, canLogin: true, password);
    }

    public async Task<ProviderSandbox?> GetAsync(string sandboxId, string? externalId, CancellationToken cancellationToken)
    {
        var schema = SchemaFor(sandboxId);
        await using var connection = await OpenAsync(cancellationToken);
        var comment = await ReadCommentAsync(connection, schema, cancellationToken);
        return comment is null ? null : Map(schema, comment, await CanLoginAsync(connection, schema, cancellationToken), password: null);
    }

    public async IAsyncEnumerable<ProviderSandbox> ListAsync(IReadOnlyDictionary<string, string> labels, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var after = "";
        while (true)
        {
            var page = new List<(string Schema, string? Comment, bool CanLogin)>();
            await using (var connection = await OpenAsync(cancellationToken))
            await using (var command = new NpgsqlCommand(
                """
                SELECT n.nspname, obj_description(n.oid, 'pg_namespace'), coalesce(r.rolcanlogin, false)
                FROM pg_namespace n LEFT JOIN pg_roles r ON r.rolname = n.nspname
                WHERE n.nspname LIKE 'sbx\_%' AND n.nspname > $1
                ORDER BY n.nspname LIMIT $2
                """, connection))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = after });
                command.Parameters.Add(new NpgsqlParameter { Value = _options.PageSize });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    page.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetBoolean(2)));
                }
            }
            foreach (var (schema, text, canLogin) in page)
            {
                if (Parse(text) is { } comment && labels.All(l => comment.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
                {
                    yield return Map(schema, comment, canLogin, password: null);
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
        await using var connection = await OpenAsync(cancellationToken);
        if (await ReadCommentAsync(connection, schema, cancellationToken) is null)
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
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, "SELECT pg_advisory_xact_lock(hashtext($1))", cancellationToken, schema);
        var comment = await ReadCommentAsync(connection, schema, cancellationToken)
            ?? throw new ProviderException(Name, $"sandbox {sandboxId} does not exist", transient: false);
        var merged = new Dictionary<string, string>(comment.Labels);
        foreach (var (key, value) in labels)
        {
            merged[key] = value;
        }
        await WriteCommentAsync(connection, schema, comment with { Labels = merged }, cancellationToken);
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
        if (tables.Count == 0 && await ReadCommentAsync(connection, schema, cancellationToken) is null)
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

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private async Task RunTemplateAsync(NpgsqlConnection connection, string schema, string templateFile, CancellationToken cancellationToken)
    {
        string sql;
        try
        {
            sql = await File.ReadAllTextAsync(Path.GetFullPath(templateFile), cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ProviderException(Name, $"cannot read the template SQL file '{templateFile}': {e.Message}", transient: false, e);
        }
        // As the sandbox's role (so it owns what the template creates), inside its schema.
        await ExecuteFormatAsync(connection, "SET LOCAL ROLE %I", cancellationToken, schema);
        await ExecuteFormatAsync(connection, "SET LOCAL search_path TO %I", cancellationToken, schema);
        try
        {
            await ExecuteAsync(connection, sql, cancellationToken);
        }
        catch (PostgresException e)
        {
            throw new ProviderException(Name, $"the template SQL file '{templateFile}' failed: {e.MessageText}", transient: false, e);
        }
        await ExecuteAsync(connection, "RESET ROLE; RESET search_path", cancellationToken);
    }

    private ProviderSandbox Map(string schema, SchemaComment comment, bool canLogin, string? password)
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
        return new ProviderSandbox(comment.SandboxId, schema, comment.Name, canLogin ? ProviderSandboxState.Running : ProviderSandboxState.Stopped,
            comment.Labels, connection, comment.CreatedAt);
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

    private async Task<SchemaComment?> ReadCommentAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = schema });
        var value = await command.ExecuteScalarAsync(cancellationToken);
        return value is null ? null : Parse(value as string)
            ?? throw new ProviderException(Name, $"schema {schema} exists but is not the broker's (no broker comment)", transient: false);
    }

    private static async Task<bool> CanLoginAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken) =>
        await ScalarAsync<bool?>(connection, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", cancellationToken, schema) ?? false;

    private static Task WriteCommentAsync(NpgsqlConnection connection, string schema, SchemaComment comment, CancellationToken cancellationToken) =>
        ExecuteFormatAsync(connection, "COMMENT ON SCHEMA %I IS %L", cancellationToken, schema, JsonSerializer.Serialize(comment, CommentJson));

    private static SchemaComment? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || !text.TrimStart().StartsWith('{'))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<SchemaComment>(text, CommentJson) is { Broker: Marker } comment ? comment : null;
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

    /// <summary>What the schema's comment holds: the broker's marker, the sandbox id, its name and labels.</summary>
    private sealed record SchemaComment(string Broker, string SandboxId, string Name, string? Template, Dictionary<string, string> Labels, DateTimeOffset CreatedAt);
}

public sealed record PostgresSchemaStats(int Tables, long Rows);
