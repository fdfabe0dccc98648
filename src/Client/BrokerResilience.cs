using System.Net;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Timeout;

namespace SandboxBroker.Client;

/// <summary>
/// The pipeline every call goes through: a total timeout, then retries, then a per-attempt timeout. Only calls the broker
/// may see twice without a second effect are retried on a lost answer or a 503 (acquire is idempotent per claim key:
/// a repeat answers the same lease; release, touch, extend, reads and pool puts likewise). Other calls (minting a token,
/// re-processing a webhook delivery) are retried only on 429, where the broker refused them before doing anything.
/// Waits honour Retry-After, which the broker sends on 429 and 503.
/// </summary>
public static class BrokerResilience
{
    /// <summary>Marks a request as safe to send again (set by the client on each call).</summary>
    public static readonly HttpRequestOptionsKey<bool> Idempotent = new("SandboxBroker.Idempotent");

    /// <summary>The call's name, for <see cref="BrokerRetry"/>.</summary>
    public static readonly HttpRequestOptionsKey<string> Operation = new("SandboxBroker.Operation");

    public static ResiliencePipelineBuilder<HttpResponseMessage> Configure(
        ResiliencePipelineBuilder<HttpResponseMessage> builder, SandboxBrokerClientOptions options)
    {
        builder.AddTimeout(options.TotalTimeout);
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.MaxRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldRetryAfterHeader = true,
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, args.Context)),
                OnRetry = args =>
                {
                    var request = args.Context.GetRequestMessage();
                    options.OnRetry?.Invoke(new BrokerRetry(
                        request is not null && request.Options.TryGetValue(Operation, out var op) ? op : "call",
                        args.AttemptNumber + 1, (int?)args.Outcome.Result?.StatusCode, args.RetryDelay,
                        args.Outcome.Exception?.Message));
                    return default;
                },
            });
        }
        builder.AddTimeout(options.AttemptTimeout);
        return builder;
    }

    private static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, ResilienceContext context)
    {
        var request = context.GetRequestMessage();
        var idempotent = request is not null && request.Options.TryGetValue(Idempotent, out var safe) && safe;
        if (outcome.Result is { } response)
        {
            return response.StatusCode == HttpStatusCode.TooManyRequests ||
                   (idempotent && response.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout
                       or HttpStatusCode.RequestTimeout);
        }
        // No answer: the call may or may not have happened, so only a call that is safe twice goes again.
        return idempotent && outcome.Exception is HttpRequestException or TimeoutRejectedException && !context.CancellationToken.IsCancellationRequested;
    }
}
