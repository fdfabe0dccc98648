using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace SandboxBroker.LoadGen;

/// <summary>Where the broker is and how to talk to it.</summary>
public sealed record BrokerSettings(
    Uri BaseUrl,
    string Token,
    string Pool,
    int TtlSeconds,
    int MaxConnections,
    TimeSpan RequestTimeout,
    string StatsConnectionString,
    TimeSpan StatsSettle,
    int MaxConcurrentCreates);

/// <summary>The broker's REST API (/v1/claims, /v1/pools) over HTTP/1.1 keep-alive connections.</summary>
public sealed class BrokerHttpBackend : IClaimsBackend
{
    private readonly BrokerSettings _settings;
    private readonly HttpClient _http;

    public BrokerHttpBackend(BrokerSettings settings)
    {
        _settings = settings;
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = settings.MaxConnections,
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        };
        _http = new HttpClient(handler)
        {
            BaseAddress = settings.BaseUrl,
            Timeout = settings.RequestTimeout,
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", settings.Token);
    }

    public string Target => "broker";
    public bool SettlesInBackground => true;
    public string StatsConnectionString => _settings.StatsConnectionString;
    public long? ClientStatements => null;

    public async ValueTask<OpResult> AcquireAsync(string key, string owner, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes(
            $"{{\"pool\":\"{_settings.Pool}\",\"ttl_seconds\":{_settings.TtlSeconds},\"owner\":\"{owner}\"}}");
        using var request = new HttpRequestMessage(HttpMethod.Put, "v1/claims/" + Uri.EscapeDataString(key))
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        return await SendAsync("acquire", request, ct);
    }

    public async ValueTask<OpResult> ReleaseAsync(string key, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, "v1/claims/" + Uri.EscapeDataString(key));
        return await SendAsync("release", request, ct);
    }

    private async ValueTask<OpResult> SendAsync(string op, HttpRequestMessage request, CancellationToken ct)
    {
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            var status = (int)response.StatusCode;
            if (status is >= 200 and < 300)
            {
                var outcome = response.Headers.TryGetValues("X-Acquire-Outcome", out var values) ? values.FirstOrDefault() : null;
                return OpResult.Ok(op, outcome ?? ReadString(bytes, "outcome") ?? (op == "release" ? "released" : status.ToString()));
            }
            return OpResult.Fail(op, $"http_{status}_{ReadErrorCode(bytes) ?? "no_code"}");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return OpResult.Fail(op, "timeout");
        }
        catch (HttpRequestException e)
        {
            return OpResult.Fail(op, "http_" + (e.HttpRequestError.ToString() is { Length: > 0 } s ? s : "error"));
        }
    }

    public async Task<PoolFill> FillPoolAsync(int ready, TimeSpan timeout, Action<string> progress, CancellationToken ct)
    {
        var before = await PoolLevelsAsync(ct);
        var readyBefore = before.GetValueOrDefault("ready");
        var leased = before.GetValueOrDefault("leased");
        var started = TimeProvider.System.GetTimestamp();
        var config = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["provider"] = "local",
            ["min_ready"] = ready,
            ["max_total"] = ready + leased + before.GetValueOrDefault("provisioning") + before.GetValueOrDefault("deleting") + 1000,
            ["default_ttl_seconds"] = _settings.TtlSeconds,
            ["on_empty"] = "fail",
            ["max_concurrent_creates"] = _settings.MaxConcurrentCreates,
        });
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await PutPoolAsync(config, ct);
                break;
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // After an overload the pool grain still works through the backlog of abandoned requests.
                if (TimeProvider.System.GetElapsedTime(started) > timeout)
                {
                    throw new InvalidOperationException(
                        $"PUT /v1/pools/{_settings.Pool} did not answer within {TimeProvider.System.GetElapsedTime(started).TotalSeconds:0}s ({attempt} tries)");
                }
                progress($"PUT /v1/pools/{_settings.Pool} timed out (try {attempt}); the broker is still busy, retrying");
            }
        }
        long current = readyBefore;

        var lastPrint = started;
        while (TimeProvider.System.GetElapsedTime(started) < timeout)
        {
            current = (await PoolLevelsAsync(ct)).GetValueOrDefault("ready");
            if (current >= ready)
            {
                return new PoolFill(readyBefore, current, TimeProvider.System.GetElapsedTime(started).TotalSeconds, true);
            }
            if (TimeProvider.System.GetElapsedTime(lastPrint) >= TimeSpan.FromSeconds(2))
            {
                var secs = TimeProvider.System.GetElapsedTime(started).TotalSeconds;
                progress($"pool {_settings.Pool}: {current}/{ready} ready after {secs:0}s ({(current - readyBefore) / Math.Max(secs, 0.001):0}/s)");
                lastPrint = TimeProvider.System.GetTimestamp();
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        }
        return new PoolFill(readyBefore, current, TimeProvider.System.GetElapsedTime(started).TotalSeconds, false);
    }

    private async Task PutPoolAsync(string config, CancellationToken ct)
    {
        using var put = new HttpRequestMessage(HttpMethod.Put, "v1/pools/" + Uri.EscapeDataString(_settings.Pool))
        {
            Content = new StringContent(config, Encoding.UTF8, "application/json"),
        };
        using var response = await _http.SendAsync(put, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException(
                $"PUT /v1/pools/{_settings.Pool} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        }
    }

    public async Task<IReadOnlyDictionary<string, long>> PoolLevelsAsync(CancellationToken ct)
    {
        using var response = await _http.GetAsync("v1/pools/" + Uri.EscapeDataString(_settings.Pool), ct);
        var levels = new Dictionary<string, long>();
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return levels;
        }
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException(
                $"GET /v1/pools/{_settings.Pool} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        }
        using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
        if (doc.RootElement.TryGetProperty("levels", out var l) && l.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in l.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.Number)
                {
                    levels[p.Name] = p.Value.GetInt64();
                }
            }
        }
        return levels;
    }

    public Task<TimeSpan> FlushPostgresStatsAsync(CancellationToken ct) =>
        // The silo's and gateway's sessions publish their counters when idle, at most every 10 s (PostgreSQL 15).
        Task.FromResult(_settings.StatsSettle);

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A top-level string property of a JSON body, or null.</summary>
    internal static string? ReadString(ReadOnlySpan<byte> json, string name)
    {
        if (json.IsEmpty)
        {
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var match = reader.ValueTextEquals(name);
                reader.Read();
                if (match && reader.TokenType == JsonTokenType.String)
                {
                    return reader.GetString();
                }
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    /// <summary>error.code of the broker's error body, or null.</summary>
    internal static string? ReadErrorCode(byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object &&
                   e.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String
                ? c.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
