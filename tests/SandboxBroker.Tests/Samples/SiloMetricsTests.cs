using System.Net;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Samples;

/// <summary>The silo process's /metrics: what an operator's Prometheus sees after an internal service used the broker.</summary>
[Collection(SiloProcessCollection.Name)]
public sealed class SiloMetricsTests(SiloProcessFixture silo)
{
    [Fact]
    public async Task Silo_metrics_show_acquire_latency_by_outcome_pool_levels_leases_and_storage()
    {
        var key = $"ctx:metrics/{Guid.NewGuid():N}";
        var (code, error, output) = await silo.RunSampleAsync("--tenant", "acme", "--key", key, "--keep", "true");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        using var http = new HttpClient { BaseAddress = new Uri(silo.HttpUrl), Timeout = TimeSpan.FromSeconds(10) };

        var text = "";
        // Levels are read every Metrics:LevelsRefresh (1 s here): wait until the kept lease shows.
        await Eventually.TrueAsync(async () =>
        {
            using var response = await http.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
            text = await response.Content.ReadAsStringAsync();
            return Samples(text, "sandboxbroker_leases").Any(s => s.Labels.Contains("status=\"active\"") && s.Value >= 1);
        }, "the active lease shows in /metrics");

        Assert.Contains(Samples(text, "sandboxbroker_claims_acquire_duration"), s => s.Labels.Contains("outcome=\"repeat\"") && s.Name.EndsWith("_count") && s.Value >= 1);
        Assert.Contains(Samples(text, "sandboxbroker_claims_acquire_duration"), s => s.Labels.Contains("outcome=\"cold\"") || s.Labels.Contains("outcome=\"warm\""));
        Assert.Contains(Samples(text, "sandboxbroker_pool_sandboxes"), s => s.Labels.Contains("pool=\"default\"") && s.Labels.Contains("level=\"leased\"") && s.Value >= 1);
        Assert.Contains(Samples(text, "sandboxbroker_storage_batch_size"), s => s.Name.EndsWith("_count") && s.Value >= 1);
        Assert.Contains(Samples(text, "sandboxbroker_storage_commit_duration"), s => s.Labels.Contains("outcome=\"committed\""));
        // Only the broker's own meters, whose labels are bounded: not Orleans' per-grain-type series.
        Assert.DoesNotContain("orleans_", text);

        using var post = await http.PostAsync("/metrics", null);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
    }

    private sealed record Sample(string Name, string Labels, double Value);

    /// <summary>The samples of one metric family in Prometheus text (its _bucket, _sum, _count lines included).</summary>
    private static List<Sample> Samples(string text, string family) =>
        text.Split('\n')
            .Where(l => l.StartsWith(family, StringComparison.Ordinal))
            .Select(l =>
            {
                var space = l.LastIndexOf(' ');
                var brace = l.IndexOf('{');
                var name = brace >= 0 && brace < space ? l[..brace] : l[..space];
                var labels = brace >= 0 && brace < space ? l[brace..space] : "";
                return new Sample(name, labels, double.Parse(l[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            })
            .ToList();
}
