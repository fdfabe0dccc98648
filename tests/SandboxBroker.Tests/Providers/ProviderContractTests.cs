using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SandboxBroker.Grains.Providers;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Providers;

/// <summary>
/// What every provider promises the broker (ISandboxProvider), run against each: local, postgres-schema, and the
/// Daytona and E2B test doubles. Listing reads pages of two, so it always crosses pages. Sandboxes a test leaves are
/// deleted after it.
/// </summary>
public abstract class ProviderContractTests : IAsyncLifetime
{
    private readonly List<string> _created = [];
    private readonly string _deployment = "dep-" + Guid.NewGuid().ToString("N")[..8];
    private IAsyncDisposable? _resources;

    protected ISandboxProvider Provider { get; private set; } = null!;

    /// <summary>The provider under test, configured for pages of two, and what to dispose after the test.</summary>
    protected abstract Task<(ISandboxProvider Provider, IAsyncDisposable Resources)> StartProviderAsync();

    public async Task InitializeAsync() => (Provider, _resources) = await StartProviderAsync();

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var id in _created)
            {
                await Provider.DeleteAsync(id, null, CancellationToken.None);
            }
        }
        finally
        {
            if (_resources is not null)
            {
                await _resources.DisposeAsync();
            }
        }
    }

    /// <summary>Unique per test: postgres-schema roles are cluster-wide, and Daytona names unique per organisation.</summary>
    protected static string NewId() => "c" + Guid.NewGuid().ToString("N")[..15];

    protected Dictionary<string, string> Labels(string sandboxId, string? deployment = null) => new()
    {
        [BrokerLabels.Deployment] = deployment ?? _deployment,
        [BrokerLabels.SandboxId] = sandboxId,
        [BrokerLabels.Pool] = "contract",
        [BrokerLabels.ClaimKey] = "github:octo/repo#42",
        ["note"] = "100%41 sure / ok",
    };

    protected async Task<ProviderSandbox> CreateAsync(string id, string? deployment = null)
    {
        _created.Add(id);
        return await Provider.CreateAsync(new ProviderCreateRequest(id, "sbx-" + id, null, Labels(id, deployment)), CancellationToken.None);
    }

    [Fact]
    public async Task Create_is_idempotent_and_get_finds_the_sandbox_by_its_id_with_or_without_the_external_id()
    {
        var id = NewId();

        var first = await CreateAsync(id);
        var again = await CreateAsync(id);

        Assert.Equal((id, first.ExternalId, ProviderSandboxState.Running), (again.SandboxId, again.ExternalId, again.State));
        var byBoth = await Provider.GetAsync(id, first.ExternalId, CancellationToken.None);
        var byId = await Provider.GetAsync(id, null, CancellationToken.None);
        Assert.Equal((id, first.ExternalId), (byBoth!.SandboxId, byBoth.ExternalId));
        Assert.Equal((id, first.ExternalId), (byId!.SandboxId, byId.ExternalId));
        Assert.Superset(Labels(id).ToHashSet(), byId.Labels.ToHashSet());
        Assert.Null(await Provider.GetAsync(NewId(), null, CancellationToken.None));
    }

    [Fact]
    public async Task List_by_labels_returns_every_match_across_pages_and_nothing_else()
    {
        var ids = new[] { NewId(), NewId(), NewId() };
        foreach (var id in ids)
        {
            await CreateAsync(id);
        }
        var foreign = NewId();
        await CreateAsync(foreign, deployment: "another-deployment-" + foreign);

        var listed = await Provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.Deployment] = _deployment });
        var one = await Provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.Deployment] = _deployment, [BrokerLabels.SandboxId] = ids[1], ["note"] = "100%41 sure / ok" });

        Assert.Equal(ids.Order(), listed.Select(s => s.SandboxId).Order());
        Assert.Equal(ids[1], Assert.Single(one).SandboxId);
        Assert.All(listed, s => Assert.Superset(Labels(s.SandboxId).ToHashSet(), s.Labels.ToHashSet()));
    }

    [Fact]
    public async Task Stop_then_start_and_the_labels_survive_both()
    {
        var id = NewId();
        var created = await CreateAsync(id);

        await Provider.StopAsync(id, created.ExternalId, CancellationToken.None);
        var stopped = await Provider.GetAsync(id, created.ExternalId, CancellationToken.None);
        await Provider.StartAsync(id, created.ExternalId, CancellationToken.None);
        var started = await Provider.GetAsync(id, null, CancellationToken.None);

        Assert.Equal(ProviderSandboxState.Stopped, stopped!.State);
        Assert.Equal(ProviderSandboxState.Running, started!.State);
        Assert.Superset(Labels(id).ToHashSet(), stopped.Labels.ToHashSet());
        Assert.Superset(Labels(id).ToHashSet(), started.Labels.ToHashSet());
        if (Provider.Capability<ISandboxLabelUpdater>() is { } updater)
        {
            await updater.SetLabelsAsync(id, created.ExternalId, new Dictionary<string, string> { [BrokerLabels.ClaimKey] = "track:lab/1" }, CancellationToken.None);
            var relabelled = (await Provider.GetAsync(id, null, CancellationToken.None))!.Labels;
            Assert.Equal(("track:lab/1", id, _deployment), (relabelled[BrokerLabels.ClaimKey], relabelled[BrokerLabels.SandboxId], relabelled[BrokerLabels.Deployment]));
        }
    }

    [Fact]
    public async Task Delete_twice_succeeds_and_leaves_nothing_to_get_or_list()
    {
        var id = NewId();
        var created = await CreateAsync(id);

        await Provider.DeleteAsync(id, created.ExternalId, CancellationToken.None);
        await Provider.DeleteAsync(id, created.ExternalId, CancellationToken.None);
        await Provider.DeleteAsync(NewId(), null, CancellationToken.None); // never existed: also succeeds

        Assert.Null(await Provider.GetAsync(id, created.ExternalId, CancellationToken.None));
        Assert.Null(await Provider.GetAsync(id, null, CancellationToken.None));
        Assert.Empty(await Provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.SandboxId] = id }));
    }

    [Fact]
    public async Task Starting_a_sandbox_that_does_not_exist_is_a_permanent_provider_error()
    {
        var missing = await Assert.ThrowsAsync<ProviderException>(() => Provider.StartAsync(NewId(), null, CancellationToken.None));

        Assert.False(missing.Transient);
        Assert.Equal(Provider.Name, missing.Provider);
    }
}

/// <summary>The contract for providers behind a REST API: their HTTP failures are mapped, transient or not.</summary>
public abstract class HttpProviderContractTests : ProviderContractTests
{
    protected abstract HttpTestDouble Double { get; }

    [Fact]
    public async Task Server_errors_and_rate_limits_are_transient_and_other_refusals_are_not()
    {
        var created = await CreateAsync(NewId());

        Double.FailNext(10, 503);
        var unavailable = await Assert.ThrowsAsync<ProviderException>(() => Provider.GetAsync(created.SandboxId, created.ExternalId, CancellationToken.None));
        Double.ClearFailures(); // what is left of the burst
        Double.FailNext(1, 403);
        var refused = await Assert.ThrowsAsync<ProviderException>(() => Provider.GetAsync(created.SandboxId, created.ExternalId, CancellationToken.None));
        Double.FailNext(2, 429);
        var afterRateLimit = await Provider.GetAsync(created.SandboxId, created.ExternalId, CancellationToken.None);

        Assert.True(unavailable.Transient);
        Assert.False(refused.Transient);
        Assert.Equal(created.ExternalId, afterRateLimit!.ExternalId); // retried after Retry-After
    }
}

public sealed class LocalProviderContract : ProviderContractTests
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sandboxbroker-contract-" + Guid.NewGuid().ToString("N"));

    protected override Task<(ISandboxProvider Provider, IAsyncDisposable Resources)> StartProviderAsync()
    {
        var provider = new LocalSandboxProvider(Options.Create(new LocalProviderOptions { Root = _root }), NullLogger<LocalSandboxProvider>.Instance);
        return Task.FromResult<(ISandboxProvider, IAsyncDisposable)>((provider, new DeleteDirectory(_root)));
    }

    private string LabelsFile(string id) => Path.Combine(_root, id, "labels.jsonl");

    private Task RelabelAsync(string id, string claimKey) => ((ISandboxLabelUpdater)Provider).SetLabelsAsync(id, null,
        new Dictionary<string, string> { [BrokerLabels.ClaimKey] = claimKey }, CancellationToken.None);

    [Fact]
    public async Task A_relabel_cut_short_by_a_crash_is_ignored_and_the_one_before_it_stands()
    {
        var id = NewId();
        await CreateAsync(id);
        await RelabelAsync(id, "track:lab/7");
        await File.AppendAllTextAsync(LabelsFile(id), $"\n{{\"{BrokerLabels.ClaimKey}\":\"track:la"); // a write cut short

        var got = await Provider.GetAsync(id, null, CancellationToken.None);
        var listed = await Provider.ListAllAsync(new Dictionary<string, string> { [BrokerLabels.SandboxId] = id });

        Assert.Equal("track:lab/7", got!.Labels[BrokerLabels.ClaimKey]);
        Assert.Equal(id, Assert.Single(listed).SandboxId);
        await RelabelAsync(id, "track:lab/8"); // and the next relabel is read whole after the torn one
        Assert.Equal("track:lab/8", (await Provider.GetAsync(id, null, CancellationToken.None))!.Labels[BrokerLabels.ClaimKey]);
    }

    [Fact]
    public async Task A_labels_file_torn_whole_leaves_the_labels_the_sandbox_was_created_with()
    {
        var id = NewId();
        await CreateAsync(id);
        await File.WriteAllTextAsync(LabelsFile(id), $"{{\"{BrokerLabels.ClaimKey}\": \"track:la");

        Assert.Equal("github:octo/repo#42", (await Provider.GetAsync(id, null, CancellationToken.None))!.Labels[BrokerLabels.ClaimKey]);
    }

    [Fact]
    public async Task A_sandbox_created_before_the_labels_log_keeps_its_labels_and_can_be_relabelled()
    {
        var id = NewId();
        await CreateAsync(id);
        File.Delete(LabelsFile(id)); // as the previous version left it: labels.json, one indented object
        await File.WriteAllTextAsync(Path.Combine(_root, id, "labels.json"), $"{{\n  \"{BrokerLabels.ClaimKey}\": \"track:lab/old\"\n}}");

        Assert.Equal("track:lab/old", (await Provider.GetAsync(id, null, CancellationToken.None))!.Labels[BrokerLabels.ClaimKey]);
        await RelabelAsync(id, "track:lab/new");
        Assert.Equal("track:lab/new", (await Provider.GetAsync(id, null, CancellationToken.None))!.Labels[BrokerLabels.ClaimKey]);
        Assert.False(File.Exists(Path.Combine(_root, id, "labels.json"))); // moved into labels.jsonl by the relabel
    }

    [Fact]
    public async Task Relabelling_a_deleted_sandbox_or_one_whose_delete_was_cut_short_is_a_permanent_error()
    {
        var deleted = NewId();
        await CreateAsync(deleted);
        await Provider.DeleteAsync(deleted, null, CancellationToken.None);
        var halfDeleted = NewId();
        await CreateAsync(halfDeleted);
        File.Delete(LabelsFile(halfDeleted));
        File.Delete(Path.Combine(_root, halfDeleted, "sandbox.json")); // the delete's first two steps, then the crash

        var gone = await Assert.ThrowsAsync<ProviderException>(() => RelabelAsync(deleted, "track:lab/1"));
        var halfGone = await Assert.ThrowsAsync<ProviderException>(() => RelabelAsync(halfDeleted, "track:lab/1"));

        Assert.False(gone.Transient);
        Assert.False(halfGone.Transient);
    }

    [Fact]
    public async Task A_relabel_outlives_stop_and_start_and_a_longer_label_then_a_shorter_one_reads_back_whole()
    {
        var id = NewId();
        await CreateAsync(id);
        await RelabelAsync(id, "github:octo/a-much-longer-repository-name#123456");
        await RelabelAsync(id, "track:lab/1");
        await Provider.StopAsync(id, null, CancellationToken.None);
        await Provider.StartAsync(id, null, CancellationToken.None);

        var got = await Provider.GetAsync(id, null, CancellationToken.None);

        Assert.Equal("track:lab/1", got!.Labels[BrokerLabels.ClaimKey]);
        Assert.Equal(ProviderSandboxState.Running, got.State);
    }

    [Fact]
    public async Task A_create_over_a_delete_interrupted_after_its_metadata_went_does_not_inherit_the_old_label()
    {
        var id = NewId();
        await CreateAsync(id);
        await RelabelAsync(id, "track:lab/old");
        File.Delete(Path.Combine(_root, id, "sandbox.json")); // the delete's first step, then the crash

        Assert.Null(await Provider.GetAsync(id, null, CancellationToken.None));
        await CreateAsync(id);
        Assert.Equal("github:octo/repo#42", (await Provider.GetAsync(id, null, CancellationToken.None))!.Labels[BrokerLabels.ClaimKey]);
    }

    private sealed class DeleteDirectory(string root) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
            return ValueTask.CompletedTask;
        }
    }
}

public sealed class PostgresSchemaProviderContract : ProviderContractTests
{
    protected override async Task<(ISandboxProvider Provider, IAsyncDisposable Resources)> StartProviderAsync()
    {
        var database = await TestDatabase.CreateAsync();
        var services = ProviderServices.Build(new Dictionary<string, string?>
        {
            ["Providers:PostgresSchema:ConnectionString"] = database.ConnectionString,
            ["Providers:PostgresSchema:PageSize"] = "2",
        });
        return (services.Provider("postgres-schema"), new Disposables(services, database));
    }
}

public sealed class DaytonaProviderContract : HttpProviderContractTests
{
    private DaytonaTestDouble? _daytona;

    protected override HttpTestDouble Double => _daytona!;

    protected override async Task<(ISandboxProvider Provider, IAsyncDisposable Resources)> StartProviderAsync()
    {
        _daytona = await DaytonaTestDouble.StartNewAsync();
        var services = ProviderServices.Build(ProviderServices.Http("Providers:Daytona", _daytona.ApiUrl));
        return (services.Provider("daytona"), new Disposables(services, _daytona));
    }
}

public sealed class E2BProviderContract : HttpProviderContractTests
{
    private E2BTestDouble? _e2b;

    protected override HttpTestDouble Double => _e2b!;

    protected override async Task<(ISandboxProvider Provider, IAsyncDisposable Resources)> StartProviderAsync()
    {
        _e2b = await E2BTestDouble.StartNewAsync();
        var services = ProviderServices.Build(ProviderServices.Http("Providers:E2B", _e2b.Url));
        return (services.Provider("e2b"), new Disposables(services, _e2b));
    }
}

/// <summary>Disposes several things, last first.</summary>
internal sealed class Disposables(params IAsyncDisposable[] items) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        foreach (var item in items.Reverse())
        {
            await item.DisposeAsync();
        }
    }
}
