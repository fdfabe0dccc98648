using System.Runtime.CompilerServices;
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
public sealed partial class PostgresSchemaSandboxProvider : ISandboxProvider, ISandboxLabelUpdater, ISandboxTemplateRule, IAsyncDisposable
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

    public ValueTask DisposeAsync()
    {
        _catalogLock.Dispose();
        return _dataSource.DisposeAsync();
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
}
