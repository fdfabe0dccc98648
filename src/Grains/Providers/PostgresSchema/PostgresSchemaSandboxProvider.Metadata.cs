using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;

namespace SandboxBroker.Grains.Providers.PostgresSchema;

/// <summary>The broker's metadata of each sandbox (a row of <c>sandboxbroker.sandboxes</c>, or a schema comment of an earlier version) and the small SQL helpers it is read and written with.</summary>
public sealed partial class PostgresSchemaSandboxProvider
{
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
