using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace SandboxBroker.Tests.Providers;

/// <summary>
/// A TEST DOUBLE of E2B's platform REST API, not E2B: an in-memory server speaking the documented endpoints the broker
/// uses (<c>X-API-Key</c>; <c>POST /sandboxes</c> answering 201; <c>GET /v2/sandboxes</c> with <c>metadata</c>
/// ("k=v&amp;k2=v2", each part URL-encoded), <c>state</c>, <c>limit</c> and <c>nextToken</c>, the next page's token in the
/// <c>x-next-token</c> header; <c>GET|DELETE /sandboxes/{id}</c>; <c>POST /sandboxes/{id}/pause|resume</c>).
/// </summary>
public sealed class E2BTestDouble : HttpTestDouble
{
    private readonly Dictionary<string, Sandbox> _sandboxes = new(StringComparer.Ordinal);
    private long _sequence;

    public sealed class Sandbox
    {
        public required string SandboxID { get; init; }
        public string TemplateID { get; set; } = "base";
        public string State { get; set; } = "running";
        public Dictionary<string, string> Metadata { get; set; } = new();
        public DateTimeOffset StartedAt { get; init; } = DateTimeOffset.UtcNow.AddHours(-1);
        public DateTimeOffset EndAt { get; set; }
        public int Timeout { get; set; }
        internal long Sequence { get; init; }
    }

    public static async Task<E2BTestDouble> StartNewAsync()
    {
        var server = new E2BTestDouble();
        await server.StartAsync();
        return server;
    }

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

    /// <summary>Creates a sandbox directly, as someone else (or a crashed broker) would.</summary>
    public Sandbox Put(Dictionary<string, string> metadata)
    {
        lock (_sandboxes)
        {
            var sandbox = new Sandbox { SandboxID = NewId(), Metadata = metadata, Sequence = ++_sequence };
            _sandboxes[sandbox.SandboxID] = sandbox;
            return sandbox;
        }
    }

    public void Remove(string id)
    {
        lock (_sandboxes)
        {
            _sandboxes.Remove(id);
        }
    }

    protected override bool Authorized(HttpRequest request) => request.Headers["X-API-Key"].ToString() == ApiKey;

    protected override void Map(WebApplication app)
    {
        app.MapPost("/sandboxes", async (HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body);
            lock (_sandboxes)
            {
                var timeout = body.TryGetProperty("timeout", out var t) ? t.GetInt32() : 15;
                var sandbox = new Sandbox
                {
                    SandboxID = NewId(),
                    TemplateID = body.GetProperty("templateID").GetString()!,
                    Metadata = body.TryGetProperty("metadata", out var m) ? m.Deserialize<Dictionary<string, string>>() ?? new() : new(),
                    StartedAt = DateTimeOffset.UtcNow,
                    EndAt = DateTimeOffset.UtcNow.AddSeconds(timeout),
                    Timeout = timeout,
                    Sequence = ++_sequence,
                };
                _sandboxes[sandbox.SandboxID] = sandbox;
                return Results.Json(new { sandboxID = sandbox.SandboxID, templateID = sandbox.TemplateID, clientID = "double", envdVersion = "0.0.0" },
                    statusCode: StatusCodes.Status201Created);
            }
        });
        app.MapGet("/v2/sandboxes", (HttpContext context) =>
        {
            var query = context.Request.Query;
            var filter = QueryHelpers.ParseQuery(query["metadata"].ToString()).ToDictionary(p => p.Key, p => p.Value.ToString());
            var states = query["state"].ToString() is { Length: > 0 } s ? s.Split(',') : ["running", "paused"];
            var size = int.TryParse(query["limit"], out var limit) ? Math.Clamp(limit, 1, 100) : 100;
            var offset = int.TryParse(query["nextToken"], out var token) ? token : 0;
            lock (_sandboxes)
            {
                var matching = _sandboxes.Values
                    .Where(x => states.Contains(x.State))
                    .Where(x => filter.All(f => x.Metadata.TryGetValue(f.Key, out var v) && v == f.Value))
                    .OrderBy(x => x.Sequence)
                    .ToList();
                var page = matching.Skip(offset).Take(size).ToList();
                if (offset + page.Count < matching.Count)
                {
                    context.Response.Headers["x-next-token"] = (offset + page.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                return Results.Json(page.Select(Listed));
            }
        });
        app.MapGet("/sandboxes/{id}", (string id) =>
        {
            lock (_sandboxes)
            {
                return _sandboxes.TryGetValue(id, out var sandbox) ? Results.Json(Listed(sandbox)) : Results.NotFound();
            }
        });
        app.MapDelete("/sandboxes/{id}", (string id) =>
        {
            lock (_sandboxes)
            {
                return _sandboxes.Remove(id) ? Results.NoContent() : Results.NotFound();
            }
        });
        app.MapPost("/sandboxes/{id}/pause", (string id) => Transition(id, from: "running", to: "paused", StatusCodes.Status204NoContent));
        app.MapPost("/sandboxes/{id}/resume", (string id) => Transition(id, from: "paused", to: "running", StatusCodes.Status201Created));
    }

    private IResult Transition(string id, string from, string to, int status)
    {
        lock (_sandboxes)
        {
            if (!_sandboxes.TryGetValue(id, out var sandbox))
            {
                return Results.NotFound();
            }
            if (sandbox.State != from)
            {
                return Results.Conflict();
            }
            sandbox.State = to;
            return Results.StatusCode(status);
        }
    }

    private static object Listed(Sandbox s) => new
    {
        sandboxID = s.SandboxID, templateID = s.TemplateID, clientID = "double", startedAt = s.StartedAt, endAt = s.EndAt,
        state = s.State, metadata = s.Metadata, cpuCount = 2, memoryMB = 512,
    };

    private static string NewId() => Guid.NewGuid().ToString("N")[..20];
}
