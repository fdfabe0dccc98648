using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SandboxBroker.Tests.Client;

/// <summary>
/// A stand-in for the gateway that answers requests with canned answers in order (status, Retry-After, body), for the
/// client's retry behaviour only: a real gateway cannot be made to answer 503 on demand. Records every request.
/// </summary>
public sealed class BrokerAnswerDouble : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Queue<(int Status, int? RetryAfter, string Body)> _answers = new();
    private readonly List<string> _requests = [];

    private BrokerAnswerDouble(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

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

    public static async Task<BrokerAnswerDouble> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var double_ = new BrokerAnswerDouble(app);
        app.Use((HttpContext context, RequestDelegate _) => double_.AnswerAsync(context));
        await app.StartAsync();
        double_.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return double_;
    }

    /// <summary>The next request gets this answer (after the queued ones).</summary>
    public void Then(int status, string body, int? retryAfter = null)
    {
        lock (_answers)
        {
            _answers.Enqueue((status, retryAfter, body));
        }
    }

    /// <summary>The broker's error shape, as the gateway writes it.</summary>
    public static string Error(string code, string message, string requestId, int? retryAfter = null) =>
        System.Text.Json.JsonSerializer.Serialize(new { error = new { code, message, request_id = requestId, retry_after = retryAfter } });

    private async Task AnswerAsync(HttpContext context)
    {
        lock (_requests)
        {
            _requests.Add($"{context.Request.Method} {context.Request.Path}");
        }
        (int Status, int? RetryAfter, string Body) answer;
        lock (_answers)
        {
            answer = _answers.Count > 0 ? _answers.Dequeue() : (500, null, Error("INTERNAL", "no answer queued", "double"));
        }
        context.Response.StatusCode = answer.Status;
        if (answer.RetryAfter is { } seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(answer.Body);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
