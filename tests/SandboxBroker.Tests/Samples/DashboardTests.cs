using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SandboxBroker.Tests.Infrastructure;

namespace SandboxBroker.Tests.Samples;

/// <summary>
/// What an operator sees on the silo process's dashboard once the silo reads Orleans' metrics for it at
/// Dashboard:CounterUpdateInterval (in place of the package's own one-second reader).
/// </summary>
[Collection(SiloProcessCollection.Name)]
public sealed class DashboardTests(SiloProcessFixture silo)
{
    [Fact]
    public async Task The_silo_page_shows_its_versions_and_orleans_counters_that_keep_moving()
    {
        using var http = new HttpClient { BaseAddress = new Uri(silo.HttpUrl), Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"admin:{SiloProcessFixture.DashboardPassword}")));

        var address = "";
        await Eventually.TrueAsync(async () =>
        {
            // The dashboard lists the silo once its grain has read the membership.
            using var overview = JsonDocument.Parse(await http.GetStringAsync("/dashboard/DashboardCounters"));
            var hosts = overview.RootElement.GetProperty("hosts");
            address = hosts.GetArrayLength() > 0 ? hosts[0].GetProperty("siloAddress").GetString()! : "";
            return address != "";
        }, "the silo on the dashboard");

        // The package's own start still ran: it reports the silo's versions.
        using var properties = JsonDocument.Parse(await http.GetStringAsync($"/dashboard/SiloProperties/{address}"));
        Assert.StartsWith("10.", properties.RootElement.GetProperty("orleansVersion").GetString());

        // Orleans' metrics reach the page, and go on reaching it: some counter changes between two reads.
        Dictionary<string, string> first = [];
        await Eventually.TrueAsync(async () => (first = await CountersAsync(http, address)).ContainsKey("orleans-catalog-activations"),
            "Orleans' counters on the silo page");
        var (code, error, output) = await silo.RunSampleAsync("--tenant", "acme", "--key", $"ctx:dashboard/{Guid.NewGuid():N}");
        Assert.True(code == 0, $"exit {code}: {error}\n{output}");
        await Eventually.TrueAsync(async () =>
        {
            var now = await CountersAsync(http, address);
            return now.Any(c => first.TryGetValue(c.Key, out var before) && before != c.Value);
        }, "an Orleans counter on the silo page changes");

        var log = silo.SiloLog(lines: 100_000);
        Assert.Contains("The dashboard reads Orleans' metrics every 00:00:01", log);
        Assert.DoesNotContain("metric reader is kept", log);
    }

    private static async Task<Dictionary<string, string>> CountersAsync(HttpClient http, string address)
    {
        using var response = await http.GetAsync($"/dashboard/SiloCounters/{address}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var counters = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return counters.RootElement.EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("value").GetString()!);
    }
}
