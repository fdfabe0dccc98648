using Npgsql;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Grains.Providers.PostgresSchema;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Providers;

/// <summary>The postgres-schema provider against the real test Postgres: one schema and one role per sandbox.</summary>
public sealed class PostgresSchemaProviderTests
{
    public static string TemplateFile
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "SandboxBroker.sln")))
            {
                directory = directory.Parent;
            }
            return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("repository root not found"), "deploy", "templates", "postgres-schema.sql");
        }
    }

    private static Dictionary<string, string?> Settings(TestDatabase sandboxes) => new()
    {
        ["Providers:PostgresSchema:ConnectionString"] = sandboxes.ConnectionString,
        ["Providers:PostgresSchema:TemplateFile"] = TemplateFile,
        ["Providers:PostgresSchema:PageSize"] = "2",
    };

    /// <summary>Roles are cluster-wide and the test Postgres is shared: ids are unique per test.</summary>
    private static string NewId() => "t" + Guid.NewGuid().ToString("N")[..15];

    public static NpgsqlConnection ConnectAs(IReadOnlyDictionary<string, string> details) =>
        new(new NpgsqlConnectionStringBuilder
        {
            Host = details["host"], Port = int.Parse(details["port"], System.Globalization.CultureInfo.InvariantCulture),
            Database = details["database"], Username = details["user"], Password = details["password"],
            SearchPath = details["search_path"], Pooling = false,
        }.ConnectionString);

    public static async Task<object?> RunAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    [Fact]
    public async Task Sandbox_roles_work_in_their_own_schema_only_a_new_create_resets_the_password_and_delete_drops_schema_and_role()
    {
        await using var sandboxes = await TestDatabase.CreateAsync();
        await using var services = ProviderServices.Build(Settings(sandboxes));
        var provider = (PostgresSchemaSandboxProvider)services.Provider("postgres-schema");
        var (a, b, c) = (NewId(), NewId(), NewId());
        var labels = (string id) => new Dictionary<string, string> { [BrokerLabels.Deployment] = "dep-" + a, [BrokerLabels.SandboxId] = id };
        try
        {
            var first = await provider.CreateAsync(new ProviderCreateRequest(a, "a", null, labels(a)), CancellationToken.None);
            var other = await provider.CreateAsync(new ProviderCreateRequest(b, "b", null, labels(b)), CancellationToken.None);
            await provider.CreateAsync(new ProviderCreateRequest(c, "c", null, labels(c)), CancellationToken.None);
            Assert.Equal(["database", "host", "password", "port", "search_path", "user"], first.Connection.Keys.Order());
            Assert.Equal(("sbx_" + a, "sbx_" + a), (first.Connection["search_path"], first.Connection["user"]));

            await using (var connection = ConnectAs(first.Connection))
            {
                await connection.OpenAsync();
                await RunAsync(connection, "CREATE TABLE mine (x int); INSERT INTO mine VALUES (1), (2)");
                Assert.Equal(1L, await RunAsync(connection, "SELECT count(*) FROM notes")); // from the template
                var denied = await Assert.ThrowsAsync<PostgresException>(() => RunAsync(connection, $"SELECT count(*) FROM {other.Connection["search_path"]}.notes"));
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
                denied = await Assert.ThrowsAsync<PostgresException>(() => RunAsync(connection, $"CREATE TABLE {other.Connection["search_path"]}.intruder (x int)"));
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
            }
            Assert.Equal(new PostgresSchemaStats(2, 3), await provider.GetStatsAsync(a, CancellationToken.None));

            // A repeated create is the same schema with a fresh password; the old one stops working.
            var again = await provider.CreateAsync(new ProviderCreateRequest(a, "a", null, labels(a)), CancellationToken.None);
            Assert.NotEqual(first.Connection["password"], again.Connection["password"]);
            var oldPassword = await Assert.ThrowsAsync<PostgresException>(() => ConnectAs(first.Connection).OpenAsync());
            Assert.Equal(PostgresErrorCodes.InvalidPassword, oldPassword.SqlState);
            Assert.Equal(new PostgresSchemaStats(2, 3), await provider.GetStatsAsync(a, CancellationToken.None));

            await provider.StopAsync(a, null, CancellationToken.None);
            Assert.Equal(ProviderSandboxState.Stopped, (await provider.GetAsync(a, null, CancellationToken.None))!.State);
            await Assert.ThrowsAsync<PostgresException>(() => ConnectAs(again.Connection).OpenAsync());
            await provider.StartAsync(a, null, CancellationToken.None);
            await using (var connection = ConnectAs(again.Connection))
            {
                await connection.OpenAsync();
                Assert.Equal(2L, await RunAsync(connection, "SELECT count(*) FROM mine"));
            }

            await provider.DeleteAsync(a, null, CancellationToken.None);
            Assert.False(await sandboxes.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", "sbx_" + a));
            Assert.False(await sandboxes.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", "sbx_" + a));
        }
        finally
        {
            foreach (var id in new[] { a, b, c })
            {
                await provider.DeleteAsync(id, null, CancellationToken.None);
            }
        }
    }

    [Fact]
    public async Task A_template_runs_as_the_sandbox_role_and_only_from_the_template_directory()
    {
        await using var sandboxes = await TestDatabase.CreateAsync();
        var directory = Directory.CreateTempSubdirectory("sandboxbroker-templates-").FullName;
        var (victim, id) = (NewId(), NewId());
        await File.WriteAllTextAsync(Path.Combine(directory, "notes.sql"), await File.ReadAllTextAsync(TemplateFile));
        await File.WriteAllTextAsync(Path.Combine(directory, "escape.sql"), $"RESET ROLE; CREATE SCHEMA escaped_{id};");
        await File.WriteAllTextAsync(Path.Combine(directory, "peek.sql"), $"CREATE TABLE stolen AS SELECT * FROM sbx_{victim}.notes;");
        await using var services = ProviderServices.Build(new Dictionary<string, string?>
        {
            ["Providers:PostgresSchema:ConnectionString"] = sandboxes.ConnectionString,
            ["Providers:PostgresSchema:TemplateDirectory"] = directory,
        });
        var provider = services.Provider("postgres-schema");
        var labels = (string sandboxId) => new Dictionary<string, string> { [BrokerLabels.SandboxId] = sandboxId };
        try
        {
            await provider.CreateAsync(new ProviderCreateRequest(victim, "v", "notes.sql", labels(victim)), CancellationToken.None);

            var escape = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest(id, "e", "escape.sql", labels(id)), CancellationToken.None));
            var peek = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest(id + "p", "p", "peek.sql", labels(id + "p")), CancellationToken.None));
            var outside = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest(id + "o", "o", "../notes.sql", labels(id + "o")), CancellationToken.None));
            var absolute = await Assert.ThrowsAsync<ProviderException>(() => provider.CreateAsync(new ProviderCreateRequest(id + "a", "a", TemplateFile, labels(id + "a")), CancellationToken.None));

            Assert.All(new[] { escape, peek, outside, absolute }, e => Assert.False(e.Transient));
            Assert.Contains("permission denied", escape.Message, StringComparison.Ordinal);
            Assert.Contains("permission denied", peek.Message, StringComparison.Ordinal);
            Assert.False(await sandboxes.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", "escaped_" + id));
            Assert.Contains("outside the template directory", outside.Message, StringComparison.Ordinal);
            Assert.Contains("outside the template directory", absolute.Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var sandboxId in new[] { victim, id, id + "p", id + "o", id + "a" })
            {
                await provider.DeleteAsync(sandboxId, null, CancellationToken.None);
            }
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Sandbox_credentials_cannot_reach_the_protected_broker_database_nor_another_sandboxs_claim_key()
    {
        await using var sandboxes = await TestDatabase.CreateAsync();
        await using var brokerDatabase = await TestDatabase.CreateAsync();
        var settings = Settings(sandboxes);
        settings["Providers:PostgresSchema:ProtectedDatabases:0"] = brokerDatabase.Name;
        await using var services = ProviderServices.Build(settings);
        var provider = services.Provider("postgres-schema");
        var (a, b) = (NewId(), NewId());
        var labels = (string sandboxId) => new Dictionary<string, string> { [BrokerLabels.SandboxId] = sandboxId, [BrokerLabels.ClaimKey] = "github:octo/secret#" + sandboxId };
        try
        {
            var first = await provider.CreateAsync(new ProviderCreateRequest(a, "a", null, labels(a)), CancellationToken.None);
            await provider.CreateAsync(new ProviderCreateRequest(b, "b", null, labels(b)), CancellationToken.None);

            var intoBroker = new Dictionary<string, string>(first.Connection) { ["database"] = brokerDatabase.Name };
            var refused = await Assert.ThrowsAsync<PostgresException>(() => ConnectAs(intoBroker).OpenAsync());
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);

            await using var connection = ConnectAs(first.Connection);
            await connection.OpenAsync();
            var comments = await RunAsync(connection, "SELECT coalesce(string_agg(obj_description(oid, 'pg_namespace'), ' '), '') FROM pg_namespace");
            Assert.DoesNotContain("github:octo/secret", (string)comments!, StringComparison.Ordinal);
            var denied = await Assert.ThrowsAsync<PostgresException>(() => RunAsync(connection, "SELECT labels FROM sandboxbroker.sandboxes"));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
            Assert.Equal("github:octo/secret#" + b, (await provider.GetAsync(b, null, CancellationToken.None))!.Labels[BrokerLabels.ClaimKey]);
        }
        finally
        {
            await provider.DeleteAsync(a, null, CancellationToken.None);
            await provider.DeleteAsync(b, null, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_pool_naming_a_template_the_provider_cannot_use_is_refused_when_it_is_set()
    {
        await using var sandboxes = await TestDatabase.CreateAsync();
        await using var broker = await BrokerCluster.StartAsync(silos: 1, Settings(sandboxes));
        var pool = broker.Grains.GetGrain<IPoolGrain>("pg-templates");
        PoolConfig With(string template) => new("pg-templates", "postgres-schema", template, 0, 2, TimeSpan.FromHours(1), TimeSpan.FromHours(2),
            null, OnEmptyPolicy.Create, 2);

        foreach (var (template, reason) in new[] { ("../notes.sql", "outside the template directory"), ("/etc/passwd", "outside the template directory"),
                     ("missing.sql", "not a file in the template directory") })
        {
            var refused = await Assert.ThrowsAsync<BrokerException>(() => pool.Configure(With(template)));
            Assert.Equal((ErrorCodes.InvalidArgument, "template"), (refused.Code, refused.Field));
            Assert.Contains(reason, refused.Message, StringComparison.Ordinal);
        }
        // A file in the directory is taken.
        Assert.Equal(Path.GetFileName(TemplateFile), (await pool.Configure(With(Path.GetFileName(TemplateFile)))).Template);
    }

    [Fact]
    public async Task Acquire_hands_out_working_credentials_for_one_schema_and_release_drops_schema_and_role()
    {
        await using var sandboxes = await TestDatabase.CreateAsync();
        var settings = Settings(sandboxes);
        settings["Broker:Pools:pg:Provider"] = "postgres-schema";
        settings["Broker:Pools:pg:MinReady"] = "0";
        await using var broker = await BrokerCluster.StartAsync(silos: 1, settings);
        var provider = broker.SiloService<SandboxProviderRegistry>().Get("postgres-schema");
        var claimA = broker.Grains.GetClaim("t", "track:pg/a");
        var claimB = broker.Grains.GetClaim("t", "track:pg/b");
        var a = await claimA.Acquire(new AcquireRequest("pg", "t", "o"));
        var b = await claimB.Acquire(new AcquireRequest("pg", "t", "o"));
        try
        {
            await using (var connection = ConnectAs(a.Sandbox.Connection))
            {
                await connection.OpenAsync();
                await RunAsync(connection, "CREATE TABLE results (score int); INSERT INTO results VALUES (42)");
                Assert.Equal(42, await RunAsync(connection, "SELECT score FROM results"));
                var denied = await Assert.ThrowsAsync<PostgresException>(() => RunAsync(connection, $"SELECT count(*) FROM {b.Sandbox.Connection["search_path"]}.notes"));
                Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, denied.SqlState);
            }
            var schema = a.Sandbox.Connection["search_path"];
            var labelled = await provider.GetAsync(a.Sandbox.SandboxId, null, CancellationToken.None);
            Assert.Equal(("track:pg/a", broker.Cluster.Options.ServiceId), (labelled!.Labels[BrokerLabels.ClaimKey], labelled.Labels[BrokerLabels.Deployment]));

            await claimA.Release("done");

            await Eventually.TrueAsync(async () =>
                !await sandboxes.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", schema),
                "the released sandbox's schema and role are dropped");
            // The password is not kept once the sandbox is deleted.
            Assert.DoesNotContain("password", (await broker.Grains.GetGrain<ISandboxGrain>(a.Sandbox.SandboxId).Get())!.Connection.Keys);
            Assert.NotNull(await provider.GetAsync(b.Sandbox.SandboxId, null, CancellationToken.None));
        }
        finally
        {
            await claimB.Release("done");
            await provider.DeleteAsync(a.Sandbox.SandboxId, null, CancellationToken.None);
            await provider.DeleteAsync(b.Sandbox.SandboxId, null, CancellationToken.None);
        }
    }
}
