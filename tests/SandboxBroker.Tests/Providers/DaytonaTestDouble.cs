using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace SandboxBroker.Tests.Providers;

/// <summary>
/// A TEST DOUBLE of Daytona's REST API, not Daytona: an in-memory server speaking the endpoints the broker uses as
/// daytonaio/daytona apps/api/src/sandbox (SandboxController, its DTOs) publishes them: <c>Authorization: Bearer</c>;
/// <c>POST /api/sandbox</c> answering once started, 409 when the name is taken in the organisation;
/// <c>GET /api/sandbox</c> with <c>labels</c> (JSON), <c>limit</c> (at most 200, else 400), <c>cursor</c> and
/// <c>includeErroredDeleted</c>, answering <c>{items, nextCursor}</c>, most recent first;
/// <c>GET /api/sandbox/{idOrName}</c>; <c>DELETE /api/sandbox/{id}</c>; <c>POST /api/sandbox/{id}/start|stop</c>;
/// <c>PUT /api/sandbox/{id}/labels</c>. Tests put sandboxes in behind the broker's back and change their state
/// (stopped, paused, error, ...).
/// </summary>
/// <remarks>
/// Where it differs from Daytona: the cursor is an offset of its own; start and stop take effect at once (Daytona passes
/// through starting/stopping); a deleted sandbox disappears at once, except an errored one, which stays visible to
/// <c>includeErroredDeleted=true</c> as Daytona keeps it; the listing lags creates by <see cref="ListingLag"/> (zero unless
/// a test asks), standing in for Daytona's eventually consistent list.
/// </remarks>
public sealed class DaytonaTestDouble : HttpTestDouble
{
    private readonly Dictionary<string, Sandbox> _sandboxes = new(StringComparer.Ordinal);
    private long _sequence;
    private int _lostCreateAnswers;

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
        internal bool Deleted { get; set; }
    }

    public static async Task<DaytonaTestDouble> StartNewAsync()
    {
        var server = new DaytonaTestDouble();
        await server.StartAsync();
        return server;
    }

    /// <summary>The base URL the provider is configured with.</summary>
    public string ApiUrl => Url + "/api";

    /// <summary>How long a new sandbox stays out of the listing (it is found by id or name at once).</summary>
    public TimeSpan ListingLag { get; set; } = TimeSpan.Zero;

    /// <summary>The sandboxes that exist (not deleted), oldest first.</summary>
    public IReadOnlyList<Sandbox> Sandboxes
    {
        get
        {
            lock (_sandboxes)
            {
                return _sandboxes.Values.Where(s => !s.Deleted).OrderBy(s => s.Sequence).ToList();
            }
        }
    }

    public Sandbox? Find(string id)
    {
        lock (_sandboxes)
        {
            return _sandboxes.GetValueOrDefault(id) is { Deleted: false } sandbox ? sandbox : null;
        }
    }

    /// <summary>Creates a sandbox directly, as someone else (or a crashed broker) would.</summary>
    public Sandbox Put(Dictionary<string, string> labels, string state = "started", DateTimeOffset? createdAt = null, bool deleted = false, string? name = null)
    {
        lock (_sandboxes)
        {
            var sandbox = new Sandbox
            {
                Id = Guid.NewGuid().ToString(), Name = name, State = state, Labels = labels, Sequence = ++_sequence,
                CreatedAt = createdAt ?? DateTimeOffset.UtcNow.AddHours(-1), Deleted = deleted,
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

    /// <summary>Deletes a sandbox behind the broker's back.</summary>
    public void Remove(string id)
    {
        lock (_sandboxes)
        {
            _sandboxes.Remove(id);
        }
    }

    /// <summary>The next creates happen, but their answers are lost (504), as when a gateway times out.</summary>
    public void LoseNextCreateAnswers(int count)
    {
        lock (_sandboxes)
        {
            _lostCreateAnswers += count;
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
                var name = body.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                if (name is not null && _sandboxes.Values.Any(s => !s.Deleted && s.Name == name))
                {
                    return Error(StatusCodes.Status409Conflict, $"Sandbox with name {name} already exists");
                }
                var sandbox = new Sandbox
                {
                    Id = Guid.NewGuid().ToString(),
                    Name = name,
                    Snapshot = body.TryGetProperty("snapshot", out var snapshot) && snapshot.ValueKind == JsonValueKind.String ? snapshot.GetString() : null,
                    Labels = body.TryGetProperty("labels", out var labels) ? labels.Deserialize<Dictionary<string, string>>() ?? new() : new(),
                    AutoStopInterval = body.TryGetProperty("autoStopInterval", out var stop) ? stop.GetInt32() : 15,
                    CreatedAt = DateTimeOffset.UtcNow,
                    Sequence = ++_sequence,
                };
                sandbox.Name ??= sandbox.Id;
                _sandboxes[sandbox.Id] = sandbox;
                if (_lostCreateAnswers > 0)
                {
                    _lostCreateAnswers--;
                    return Error(StatusCodes.Status504GatewayTimeout, "upstream timed out");
                }
                return Results.Json(sandbox);
            }
        });
        app.MapGet("/api/sandbox", (string? labels, int? limit, string? cursor, bool? includeErroredDeleted) =>
        {
            var filter = labels is null ? new Dictionary<string, string>() : JsonSerializer.Deserialize<Dictionary<string, string>>(labels)!;
            var size = limit ?? 100;
            if (size is < 1 or > 200)
            {
                return Error(StatusCodes.Status400BadRequest, "limit must not be greater than 200");
            }
            var offset = cursor is null ? 0 : int.Parse(cursor, System.Globalization.CultureInfo.InvariantCulture);
            var visibleFrom = DateTimeOffset.UtcNow - ListingLag;
            lock (_sandboxes)
            {
                var matching = _sandboxes.Values
                    .Where(s => !s.Deleted || (includeErroredDeleted == true && s.State is "error" or "build_failed"))
                    .Where(s => ListingLag == TimeSpan.Zero || s.CreatedAt <= visibleFrom)
                    .Where(s => filter.All(f => s.Labels.TryGetValue(f.Key, out var v) && v == f.Value))
                    .OrderByDescending(s => s.Sequence)
                    .ToList();
                var items = matching.Skip(offset).Take(size).ToList();
                var next = offset + items.Count < matching.Count ? (offset + items.Count).ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
                return Results.Json(new { items, nextCursor = next });
            }
        });
        app.MapGet("/api/sandbox/{idOrName}", (string idOrName) =>
        {
            lock (_sandboxes)
            {
                var sandbox = _sandboxes.Values.FirstOrDefault(s => !s.Deleted && (s.Id == idOrName || s.Name == idOrName));
                return sandbox is null ? NotFound(idOrName) : Results.Json(sandbox);
            }
        });
        app.MapDelete("/api/sandbox/{id}", (string id) =>
        {
            lock (_sandboxes)
            {
                if (!_sandboxes.TryGetValue(id, out var sandbox) || sandbox.Deleted)
                {
                    return NotFound(id);
                }
                if (sandbox.State is "error" or "build_failed")
                {
                    sandbox.Deleted = true; // still listed with includeErroredDeleted=true, as Daytona does
                }
                else
                {
                    _sandboxes.Remove(id);
                }
                return Results.Ok();
            }
        });
        app.MapPost("/api/sandbox/{id}/start", (string id) => Transition(id, ["stopped", "archived", "paused", "started"], "started"));
        app.MapPost("/api/sandbox/{id}/stop", (string id) => Transition(id, ["started", "stopped"], "stopped"));
        app.MapPut("/api/sandbox/{id}/labels", async (string id, HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body);
            lock (_sandboxes)
            {
                if (!_sandboxes.TryGetValue(id, out var sandbox) || sandbox.Deleted)
                {
                    return NotFound(id);
                }
                sandbox.Labels = body.GetProperty("labels").Deserialize<Dictionary<string, string>>() ?? new();
                return Results.Json(new { labels = sandbox.Labels });
            }
        });
    }

    private IResult Transition(string id, string[] from, string to)
    {
        lock (_sandboxes)
        {
            if (!_sandboxes.TryGetValue(id, out var sandbox) || sandbox.Deleted)
            {
                return NotFound(id);
            }
            if (!from.Contains(sandbox.State))
            {
                return Error(StatusCodes.Status400BadRequest, $"Sandbox is in {sandbox.State} state");
            }
            sandbox.State = to;
            return Results.Json(sandbox);
        }
    }

    private static IResult NotFound(string id) => Error(StatusCodes.Status404NotFound, $"Sandbox with ID or name {id} not found");

    private static IResult Error(int status, string message) =>
        Results.Json(new { statusCode = status, message, error = ReasonPhrases(status) }, statusCode: status);

    private static string ReasonPhrases(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);
}
