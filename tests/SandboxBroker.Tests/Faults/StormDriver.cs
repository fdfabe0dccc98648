using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace SandboxBroker.Tests.Faults;

/// <summary>How hard the storm blows.</summary>
/// <param name="HotKeys">The first this-many keys get a third of all operations, so callers often meet on one key.</param>
public sealed record StormOptions(int Keys, int Workers, TimeSpan RequestTimeout, int Seed, string KeyPrefix = "faults:key-", int HotKeys = 3)
{
    public IReadOnlyList<string> KeyNames => Enumerable.Range(0, Keys).Select(i => $"{KeyPrefix}{i}").ToList();
}

/// <summary>
/// Drives acquires, touches and releases over many keys through the gateway's HTTP API from several concurrent
/// workers, and records each operation in an <see cref="OperationHistory"/>: 2xx is ok, 4xx or a refused connection
/// a failure (nothing happened), and a 5xx, a timeout or a broken connection unknown (it may or may not have happened).
/// </summary>
public sealed class StormDriver : IDisposable
{
    private readonly string _gatewayUrl;
    private readonly OperationHistory _history;
    private readonly StormOptions _options;
    private readonly HttpClient _http;

    public StormDriver(string gatewayUrl, string adminToken, OperationHistory history, StormOptions options)
    {
        _gatewayUrl = gatewayUrl;
        _history = history;
        _options = options;
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromSeconds(30),
            ConnectTimeout = TimeSpan.FromSeconds(3),
            MaxConnectionsPerServer = 256,
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri(gatewayUrl), Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
    }

    /// <summary>Runs the workers until <paramref name="stop"/>; operations in flight then complete (they are not cancelled).</summary>
    public Task RunAsync(CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, _options.Workers).Select(w => Task.Run(() => WorkerAsync(w, stop), CancellationToken.None)));

    private async Task WorkerAsync(int worker, CancellationToken stop)
    {
        var random = new Random(HashCode.Combine(_options.Seed, worker));
        var keys = _options.KeyNames;
        while (!stop.IsCancellationRequested)
        {
            var key = random.NextDouble() < 0.33 && _options.HotKeys > 0
                ? keys[random.Next(Math.Min(_options.HotKeys, keys.Count))]
                : keys[random.Next(keys.Count)];
            var roll = random.NextDouble();
            var kind = roll switch
            {
                < 0.45 => OpKind.Acquire,
                < 0.70 => OpKind.Touch,
                < 0.95 => OpKind.Release,
                _ => OpKind.Read,
            };
            var op = await InvokeAsync(worker, key, kind);
            if (op.Outcome == OpOutcome.Unknown || op.Code == "connection refused")
            {
                // The cluster is in trouble: do not spin.
                await Task.Delay(random.Next(50, 250), CancellationToken.None);
            }
        }
    }

    /// <summary>One operation through HTTP, recorded with its outcome.</summary>
    public async Task<Operation> InvokeAsync(int worker, string key, OpKind kind)
    {
        var id = _history.NextId();
        var path = $"/v1/claims/{Uri.EscapeDataString(key)}";
        using var request = kind switch
        {
            OpKind.Acquire => new HttpRequestMessage(HttpMethod.Put, path) { Content = new StringContent("{}", Encoding.UTF8, "application/json") },
            OpKind.Touch => new HttpRequestMessage(HttpMethod.Post, path + "/touch"),
            OpKind.Release => new HttpRequestMessage(HttpMethod.Delete, path),
            _ => new HttpRequestMessage(HttpMethod.Get, path),
        };
        request.Headers.Add("X-Request-ID", $"op-{id}");
        request.Headers.ConnectionClose = true;
        request.Headers.Authorization = _http.DefaultRequestHeaders.Authorization;
        // A handler of its own, counting its connects: the handler silently resends a request whose connection broke
        // before the answer (the gateway may have done the work), so a refused connection is a definite failure only
        // when it was the operation's one and only connect.
        var connects = 0;
        using var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(3),
            ConnectCallback = async (context, ct) =>
            {
                Interlocked.Increment(ref connects);
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var http = new HttpClient(handler) { BaseAddress = _http.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        var invoked = _history.Now;
        Operation op;
        try
        {
            using var timeout = new CancellationTokenSource(_options.RequestTimeout);
            using var response = await http.SendAsync(request, timeout.Token);
            var body = await response.Content.ReadAsStringAsync(timeout.Token);
            var status = (int)response.StatusCode;
            var completed = _history.Now;
            op = status switch
            {
                >= 200 and < 300 => new Operation(id, worker, key, kind, invoked, completed, OpOutcome.Ok, status,
                    SandboxIdOf(body), Created: kind == OpKind.Acquire && response.StatusCode == HttpStatusCode.Created, Lease: LeaseNumberOf(body)),
                >= 400 and < 500 => new Operation(id, worker, key, kind, invoked, completed, OpOutcome.Fail, status, Code: ErrorCodeOf(body)),
                _ => new Operation(id, worker, key, kind, invoked, completed, OpOutcome.Unknown, status, Code: ErrorCodeOf(body)),
            };
        }
        catch (HttpRequestException e) when (Volatile.Read(ref connects) == 1 &&
                                             e.InnerException is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused })
        {
            // Nothing was sent: the gateway was not listening. A definite failure.
            op = new Operation(id, worker, key, kind, invoked, _history.Now, OpOutcome.Fail, Code: "connection refused");
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or JsonException)
        {
            op = new Operation(id, worker, key, kind, invoked, _history.Now, OpOutcome.Unknown,
                Code: e is OperationCanceledException ? "timeout" : e.GetType().Name);
        }
        _history.Add(op);
        return op;
    }

    public void Dispose() => _http.Dispose();

    private static string? SandboxIdOf(string body)
    {
        using var document = JsonDocument.Parse(body);
        return document.RootElement.TryGetProperty("sandbox_id", out var id) ? id.GetString() : null;
    }

    private static long? LeaseNumberOf(string body)
    {
        using var document = JsonDocument.Parse(body);
        return document.RootElement.TryGetProperty("lease_number", out var number) && number.ValueKind == JsonValueKind.Number ? number.GetInt64() : null;
    }

    private static string? ErrorCodeOf(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.TryGetProperty("error", out var error) && error.TryGetProperty("code", out var code) ? code.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public override string ToString() => $"storm on {_gatewayUrl}: {_options}";
}
