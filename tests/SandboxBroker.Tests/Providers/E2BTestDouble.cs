using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace SandboxBroker.Tests.Providers;

/// <summary>
/// A TEST DOUBLE of E2B's platform REST API, not E2B: an in-memory server speaking the endpoints the broker uses as
/// e2b-dev/E2B spec/openapi.yml publishes them (<c>X-API-Key</c>; <c>POST /sandboxes</c> answering 201 with the envd
/// access token of a secured sandbox; <c>GET /v2/sandboxes</c> with <c>metadata</c>, <c>state</c>, <c>limit</c> (at most
/// 100, else 400) and <c>nextToken</c>, the next page's token in the <c>x-next-token</c> header and no access tokens;
/// <c>GET /sandboxes/{id}</c> (SandboxDetail, with the token); <c>DELETE /sandboxes/{id}</c>;
/// <c>POST /sandboxes/{id}/pause</c> (409 when not running); <c>POST /sandboxes/{id}/connect {timeout}</c> (resumes a
/// paused sandbox with 201, extends a running one's timer with 200, never shortens it); <c>POST /sandboxes/{id}/timeout</c>
/// (overwrites the timer)). Its clock is the test's: a sandbox whose timer runs out is paused (autoPause) or killed, as
/// E2B does. Timeouts above <see cref="MaxTimeoutSeconds"/> (the team's plan limit) are refused with 400.
/// </summary>
/// <remarks>
/// Where it differs from E2B: ids and tokens are random strings of its own; a sandbox pauses at once (E2B shows
/// <c>pausing</c> for a while, see <see cref="SetState"/>); the listing lags creates only by <see cref="ListingLag"/>
/// (zero unless a test asks), standing in for E2B's eventually consistent list.
/// </remarks>
public sealed class E2BTestDouble(TimeProvider clock) : HttpTestDouble
{
    private readonly Dictionary<string, Sandbox> _sandboxes = new(StringComparer.Ordinal);
    private long _sequence;

    public sealed class Sandbox
    {
        public required string SandboxID { get; init; }
        public string TemplateID { get; set; } = "base";
        public string State { get; set; } = "running";
        public Dictionary<string, string> Metadata { get; set; } = new();
        public DateTimeOffset StartedAt { get; init; }
        public DateTimeOffset EndAt { get; set; }
        public int Timeout { get; set; }
        public bool AutoPause { get; set; }
        public bool Secure { get; set; }
        public string? EnvdAccessToken { get; set; }
        internal long Sequence { get; init; }
    }

    /// <summary>How long a new sandbox stays out of the listing (it is found by id at once).</summary>
    public TimeSpan ListingLag { get; set; } = TimeSpan.Zero;

    /// <summary>The team's longest allowed timeout (E2B Hobby: 1 hour).</summary>
    public int MaxTimeoutSeconds { get; set; } = 3600;

    public static async Task<E2BTestDouble> StartNewAsync(TimeProvider? clock = null)
    {
        var server = new E2BTestDouble(clock ?? TimeProvider.System);
        await server.StartAsync();
        return server;
    }

    public IReadOnlyList<Sandbox> Sandboxes
    {
        get
        {
            lock (_sandboxes)
            {
                Expire();
                return _sandboxes.Values.OrderBy(s => s.Sequence).ToList();
            }
        }
    }

    public Sandbox? Find(string id)
    {
        lock (_sandboxes)
        {
            Expire();
            return _sandboxes.GetValueOrDefault(id);
        }
    }

    /// <summary>Creates a sandbox directly, as someone else (or a crashed broker) would.</summary>
    public Sandbox Put(Dictionary<string, string> metadata, string state = "running")
    {
        lock (_sandboxes)
        {
            var now = clock.GetUtcNow();
            var sandbox = new Sandbox
            {
                SandboxID = NewId(), Metadata = metadata, State = state, Sequence = ++_sequence, StartedAt = now.AddHours(-1),
                EndAt = now.AddSeconds(MaxTimeoutSeconds), Timeout = MaxTimeoutSeconds,
            };
            _sandboxes[sandbox.SandboxID] = sandbox;
            return sandbox;
        }
    }

    public void SetState(string id, string state)
    {
        lock (_sandboxes)
        {
            _sandboxes[id].State = state;
        }
    }

    protected override bool Authorized(HttpRequest request) => request.Headers["X-API-Key"].ToString() == ApiKey;

    protected override void Map(WebApplication app)
    {
        app.MapPost("/sandboxes", async (HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<JsonElement>(request.Body);
            var timeout = body.TryGetProperty("timeout", out var t) ? t.GetInt32() : 15; // the spec's default
            if (timeout > MaxTimeoutSeconds)
            {
                return TooLong(timeout);
            }
            lock (_sandboxes)
            {
                var now = clock.GetUtcNow();
                var secure = body.TryGetProperty("secure", out var s) && s.GetBoolean();
                var sandbox = new Sandbox
                {
                    SandboxID = NewId(),
                    TemplateID = body.GetProperty("templateID").GetString()!,
                    Metadata = body.TryGetProperty("metadata", out var m) ? m.Deserialize<Dictionary<string, string>>() ?? new() : new(),
                    StartedAt = now,
                    EndAt = now.AddSeconds(timeout),
                    Timeout = timeout,
                    AutoPause = body.TryGetProperty("autoPause", out var a) && a.GetBoolean(),
                    Secure = secure,
                    EnvdAccessToken = secure ? "envd-" + Guid.NewGuid().ToString("N") : null,
                    Sequence = ++_sequence,
                };
                _sandboxes[sandbox.SandboxID] = sandbox;
                return Results.Json(Created(sandbox), statusCode: StatusCodes.Status201Created);
            }
        });
        app.MapGet("/v2/sandboxes", (HttpContext context) =>
        {
            var query = context.Request.Query;
            // E2B decodes the metadata filter three times: the query parameter, the pairs (as form data), each key and value.
            var filter = QueryHelpers.ParseQuery(query["metadata"].ToString())
                .ToDictionary(p => Uri.UnescapeDataString(p.Key), p => Uri.UnescapeDataString(p.Value.ToString()));
            var states = query["state"].ToString() is { Length: > 0 } s ? s.Split(',') : ["running", "paused"];
            var size = 100;
            if (query["limit"].ToString() is { Length: > 0 } limitText && (!int.TryParse(limitText, out size) || size is < 1 or > 100))
            {
                return Results.Json(new { code = 400, message = "limit must be between 1 and 100" }, statusCode: StatusCodes.Status400BadRequest);
            }
            var offset = int.TryParse(query["nextToken"], out var token) ? token : 0;
            lock (_sandboxes)
            {
                Expire();
                var matching = _sandboxes.Values
                    .Where(x => states.Contains(x.State))
                    .Where(x => ListingLag == TimeSpan.Zero || x.StartedAt <= clock.GetUtcNow() - ListingLag)
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
                Expire();
                return _sandboxes.TryGetValue(id, out var sandbox) ? Results.Json(Detail(sandbox)) : NotFound(id);
            }
        });
        app.MapDelete("/sandboxes/{id}", (string id) =>
        {
            lock (_sandboxes)
            {
                Expire();
                return _sandboxes.Remove(id) ? Results.NoContent() : NotFound(id);
            }
        });
        app.MapPost("/sandboxes/{id}/pause", (string id) =>
        {
            lock (_sandboxes)
            {
                Expire();
                if (!_sandboxes.TryGetValue(id, out var sandbox))
                {
                    return NotFound(id);
                }
                if (sandbox.State != "running")
                {
                    return Results.Json(new { code = 409, message = "sandbox is not running" }, statusCode: StatusCodes.Status409Conflict);
                }
                sandbox.State = "paused";
                return Results.NoContent();
            }
        });
        app.MapPost("/sandboxes/{id}/connect", async (string id, HttpRequest request) =>
        {
            var timeout = (await JsonSerializer.DeserializeAsync<JsonElement>(request.Body)).GetProperty("timeout").GetInt32();
            if (timeout > MaxTimeoutSeconds)
            {
                return TooLong(timeout);
            }
            lock (_sandboxes)
            {
                Expire();
                if (!_sandboxes.TryGetValue(id, out var sandbox))
                {
                    return NotFound(id);
                }
                var end = clock.GetUtcNow().AddSeconds(timeout);
                if (sandbox.State == "running")
                {
                    // "TTL is only extended."
                    sandbox.EndAt = end > sandbox.EndAt ? end : sandbox.EndAt;
                    return Results.Json(Created(sandbox), statusCode: StatusCodes.Status200OK);
                }
                sandbox.State = "running";
                sandbox.EndAt = end;
                return Results.Json(Created(sandbox), statusCode: StatusCodes.Status201Created);
            }
        });
        app.MapPost("/sandboxes/{id}/timeout", async (string id, HttpRequest request) =>
        {
            var timeout = (await JsonSerializer.DeserializeAsync<JsonElement>(request.Body)).GetProperty("timeout").GetInt32();
            if (timeout > MaxTimeoutSeconds)
            {
                return TooLong(timeout);
            }
            lock (_sandboxes)
            {
                Expire();
                if (!_sandboxes.TryGetValue(id, out var sandbox) || sandbox.State != "running")
                {
                    return NotFound(id);
                }
                sandbox.EndAt = clock.GetUtcNow().AddSeconds(timeout);
                return Results.NoContent();
            }
        });
    }

    /// <summary>E2B's own timer: a running sandbox past its end is paused (autoPause) or killed.</summary>
    private void Expire()
    {
        var now = clock.GetUtcNow();
        foreach (var sandbox in _sandboxes.Values.Where(s => s.State == "running" && s.EndAt <= now).ToList())
        {
            if (sandbox.AutoPause)
            {
                sandbox.State = "paused";
            }
            else
            {
                _sandboxes.Remove(sandbox.SandboxID);
            }
        }
    }

    private IResult TooLong(int timeout) =>
        Results.Json(new { code = 400, message = $"timeout {timeout} s is above the team's limit of {MaxTimeoutSeconds} s" }, statusCode: StatusCodes.Status400BadRequest);

    private static IResult NotFound(string id) =>
        Results.Json(new { code = 404, message = $"sandbox \"{id}\" doesn't exist or you don't have access to it" }, statusCode: StatusCodes.Status404NotFound);

    private static object Created(Sandbox s) => new
    {
        sandboxID = s.SandboxID, templateID = s.TemplateID, clientID = "double", envdVersion = "0.2.0", envdAccessToken = s.EnvdAccessToken,
        domain = (string?)null,
    };

    private static object Listed(Sandbox s) => new
    {
        sandboxID = s.SandboxID, templateID = s.TemplateID, clientID = "double", startedAt = s.StartedAt, endAt = s.EndAt,
        state = s.State, metadata = s.Metadata, cpuCount = 2, memoryMB = 512, diskSizeMB = 512, envdVersion = "0.2.0",
    };

    private static object Detail(Sandbox s) => new
    {
        sandboxID = s.SandboxID, templateID = s.TemplateID, clientID = "double", startedAt = s.StartedAt, endAt = s.EndAt,
        state = s.State, metadata = s.Metadata, cpuCount = 2, memoryMB = 512, diskSizeMB = 512, envdVersion = "0.2.0",
        envdAccessToken = s.EnvdAccessToken, domain = (string?)null,
    };

    private static string NewId() => Guid.NewGuid().ToString("N")[..20];
}
