using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SandboxBroker.Tests.Providers;

/// <summary>
/// The shared part of the provider test doubles: a real HTTP server (Kestrel on 127.0.0.1, a free port) that checks
/// the API key, counts every request, and on demand answers the next requests with an error status or holds them
/// until the client gives up. Not a provider: a stand-in for one, speaking its documented endpoints.
/// </summary>
public abstract class HttpTestDouble : IAsyncDisposable
{
    public const string ApiKey = "test-double-key";

    private readonly WebApplication _app;
    private readonly List<string> _requests = [];
    private readonly Queue<(int Status, string? Method)> _failures = new();
    private volatile bool _hang;

    protected HttpTestDouble()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.Use(async (context, next) =>
        {
            var request = $"{context.Request.Method} {context.Request.Path}{context.Request.QueryString}";
            lock (_requests)
            {
                _requests.Add(request);
            }
            if (_hang)
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { });
                return;
            }
            if (TakeFailure(context.Request.Method) is { } status)
            {
                context.Response.StatusCode = status;
                if (status == StatusCodes.Status429TooManyRequests)
                {
                    // As both providers' rate limiters do: the client is told when to come back.
                    context.Response.Headers.RetryAfter = "1";
                }
                await context.Response.WriteAsync($"{{\"message\":\"injected failure {status}\"}}");
                return;
            }
            if (!Authorized(context.Request))
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return;
            }
            await next(context);
        });
        Map(_app);
    }

    /// <summary>Where the double listens, e.g. http://127.0.0.1:40123.</summary>
    public string Url { get; private set; } = "";

    /// <summary>Every request received, "METHOD /path?query", in order.</summary>
    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (_requests)
            {
                return _requests.ToList();
            }
        }
    }

    public int RequestCount(string methodAndPathPrefix) => Requests.Count(r => r.StartsWith(methodAndPathPrefix, StringComparison.Ordinal));

    /// <summary>The next <paramref name="count"/> requests (of <paramref name="method"/> only, if given) get <paramref name="status"/>.</summary>
    public void FailNext(int count, int status, string? method = null)
    {
        lock (_failures)
        {
            for (var i = 0; i < count; i++)
            {
                _failures.Enqueue((status, method));
            }
        }
    }

    public void ClearFailures()
    {
        lock (_failures)
        {
            _failures.Clear();
        }
    }

    /// <summary>While true, every request is held open until the client gives up.</summary>
    public bool Hang
    {
        get => _hang;
        set => _hang = value;
    }

    public async Task StartAsync()
    {
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Url = address.TrimEnd('/');
    }

    public async ValueTask DisposeAsync()
    {
        _hang = false;
        await _app.StopAsync();
        await _app.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    protected abstract bool Authorized(HttpRequest request);

    protected abstract void Map(WebApplication app);

    private int? TakeFailure(string method)
    {
        lock (_failures)
        {
            if (_failures.Count > 0 && (_failures.Peek().Method is null || _failures.Peek().Method == method))
            {
                return _failures.Dequeue().Status;
            }
            return null;
        }
    }
}
