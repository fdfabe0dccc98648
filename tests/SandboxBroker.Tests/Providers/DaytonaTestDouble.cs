using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace SandboxBroker.Tests.Providers;

/// <summary>
/// A TEST DOUBLE of Daytona's REST API, not Daytona: an in-memory server speaking the documented endpoints the broker
/// uses (<c>Authorization: Bearer</c>; <c>POST /api/sandbox</c> answering once started; <c>GET /api/sandbox</c> with
/// <c>labels</c> (JSON), <c>limit</c>, <c>cursor</c> and <c>includeErroredDeleted</c>, answering <c>{items, nextCursor}</c>;
/// <c>GET|DELETE /api/sandbox/{id}</c>; <c>POST /api/sandbox/{id}/start|stop</c>; <c>PUT /api/sandbox/{id}/labels</c>).
/// Tests put sandboxes in behind the broker's back and change their state (stopped, error).
/// </summary>
public sealed class DaytonaTestDouble : HttpTestDouble
{
    private readonly Dictionary<string, Sandbox> _sandboxes = new(StringComparer.Ordinal);
    private long _sequence;

    public sealed class Sandbox
    {
        public required string Id { get; init; }
        public string? Name { get; set; }
        public string State { get; set; } = "started";
        public string? ErrorReason { get; set; }
        public Dictionary<string, string> Labels { get; set; } = new();
        public int AutoStopInterval { get; set; }
        public string? Snapshot { get; set; }
        public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow.AddHours(-1);
        internal long Sequence { get; init; }
    }

    public static async Task<DaytonaTestDouble> StartNewAsync()
    {
        var server = new DaytonaTestDouble();
        await server.StartAsync();
        return server;
    }

    /// <summary>The base URL the provider is configured with.</summary>
    public string ApiUrl => Url + "/api";

    public IReadOnlyList<Sandbox> Sandboxes
    {
        get
        {
            lock (_sandboxes)
            {
                return _sandboxes.Values.OrderBy(s => s.Sequence).ToList();
            }
        }
    }

    public Sandbox? Find(string id)
    {
        lock (_sandboxes)
        {
            return _sandboxes.GetValueOrDefault(id);
        }
    }

    /// <summary>Creates a sandbox directly, as someone else (or a crashed broker) would.</summary>
    public Sandbox Put(Dictionary<string, string> labels, string state = "started", DateTimeOffset? createdAt = null)
    {
        lock (_sandboxes)
        {
            var sandbox = new Sandbox
            {
                Id = Guid.NewGuid().ToString(), State = state, Labels = labels, Sequence = ++_sequence,
                CreatedAt = createdAt ?? DateTimeOffset.UtcNow.AddHours(-1),
            };
            _sandboxes[sandbox.Id] = sandbox;
            return sandbox;
        }
    }

    public void SetState(string id, string state, string? errorReason = null)
    {
        lock (_sandboxes)
        {
            _sandboxes[id].State = state;
            _sandboxes[id].ErrorReason = errorReason;
        }
    }

    public void Remove(string id)
    {
        lock (_sandboxes)
        {
            _sandboxes.Remove(id);
        }
    }

    protected override bool Authorized(HttpRequest request) =>
        request.Headers.Authorization.ToString() == $"Bearer {ApiKey}";

    protected override void Map(WebApplication app)
    {
        app.MapPost("/api/sandbox", async (HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body);
            lock (_sandboxes)
            {
                var sandbox = new Sandbox
                {
                    Id = Guid.NewGuid().ToString(),
                    Name = body.TryGetProperty("name", out var name) ? name.GetString() : null,
                    Snapshot = body.TryGetProperty("snapshot", out var snapshot) && snapshot.ValueKind == JsonValueKind.String ? snapshot.GetString() : null,
                    Labels = body.TryGetProperty("labels", out var labels) ? labels.Deserialize<Dictionary<string, string>>() ?? new() : new(),
                    AutoStopInterval = body.TryGetProperty("autoStopInterval", out var stop) ? stop.GetInt32() : 15,
                    CreatedAt = DateTimeOffset.UtcNow,
                    Sequence = ++_sequence,
                };
                _sandboxes[sandbox.Id] = sandbox;
                return Results.Json(sandbox);
            }
        });
        app.MapGet("/api/sandbox", (string? labels, int? limit, string? cursor, bool? includeErroredDeleted) =>
        {
            var filter = labels is null ? new Dictionary<string, string>() : JsonSerializer.Deserialize<Dictionary<string, string>>(labels)!;
            var size = Math.Clamp(limit ?? 10, 1, 100);
            var offset = cursor is null ? 0 : int.Parse(cursor, System.Globalization.CultureInfo.InvariantCulture);
            lock (_sandboxes)
            {
                var matching = _sandboxes.Values
                    .Where(s => includeErroredDeleted == true || s.State is not ("error" or "build_failed"))
                    .Where(s => filter.All(f => s.Labels.TryGetValue(f.Key, out var v) && v == f.Value))
                    .OrderBy(s => s.Sequence)
                    .ToList();
                var items = matching.Skip(offset).Take(size).ToList();
                var next = offset + items.Count < matching.Count ? (offset + items.Count).ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
                return Results.Json(new { items, nextCursor = next });
            }
        });
        app.MapGet("/api/sandbox/{id}", (string id) => Find(id) is { } sandbox ? Results.Json(sandbox) : Results.NotFound());
        app.MapDelete("/api/sandbox/{id}", (string id) =>
        {
            lock (_sandboxes)
            {
                return _sandboxes.Remove(id) ? Results.Ok() : Results.NotFound();
            }
        });
        app.MapPost("/api/sandbox/{id}/start", (string id) =>
        {
            lock (_sandboxes)
            {
                if (!_sandboxes.TryGetValue(id, out var sandbox))
                {
                    return Results.NotFound();
                }
                sandbox.State = "started";
                return Results.Json(sandbox);
            }
        });
        app.MapPost("/api/sandbox/{id}/stop", (string id) =>
        {
            lock (_sandboxes)
            {
                if (!_sandboxes.TryGetValue(id, out var sandbox))
                {
                    return Results.NotFound();
                }
                sandbox.State = "stopped";
                return Results.Ok();
            }
        });
        app.MapPut("/api/sandbox/{id}/labels", async (string id, HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body);
            lock (_sandboxes)
            {
                if (!_sandboxes.TryGetValue(id, out var sandbox))
                {
                    return Results.NotFound();
                }
                sandbox.Labels = body.GetProperty("labels").Deserialize<Dictionary<string, string>>() ?? new();
                return Results.Json(new { labels = sandbox.Labels });
            }
        });
    }
}
