using Npgsql;

namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>The provider's set-up work: the template read from the template directory and run as the sandbox's role, the schema, and the broker's catalog (its metadata table and the revoked CONNECT).</summary>
public sealed partial class PostgresSchemaSandboxProvider
{
    public string? ProblemWith(string template) => ResolveTemplate(template) switch
    {
        (_, { } problem) => problem,
        ({ } path, _) when !File.Exists(path) => $"template '{template}' is not a file in the template directory",
        _ => null,
    };

    /// <summary>
    /// Where a template name points, or why it may not be used: a pool names a file in the template directory, never a
    /// path elsewhere (an API token that may configure pools must not read the silo's files).
    /// </summary>
    private (string? Path, string? Problem) ResolveTemplate(string name)
    {
        if (_templateDirectory is null)
        {
            return (null, $"template '{name}' cannot be used: {PostgresSchemaProviderOptions.Section}:TemplateDirectory is not set");
        }
        var path = Path.GetFullPath(Path.IsPathRooted(name) ? name : Path.Combine(_templateDirectory, name));
        return path.StartsWith(_templateDirectory + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? (path, null)
            : (null, $"template '{name}' is outside the template directory");
    }

    /// <summary>The template's text, read only from the template directory (<see cref="ResolveTemplate"/>).</summary>
    private async Task<string> ReadTemplateAsync(string name, CancellationToken cancellationToken)
    {
        var (path, problem) = ResolveTemplate(name);
        if (path is null)
        {
            throw new ProviderException(Name, problem!, transient: false);
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
}
