using System.Net;
using SandboxBroker.Client;

namespace SandboxBroker.Cli;

/// <summary>
/// The exit status by class of failure, so a script can tell "try again later" from "fix the call" without parsing text.
/// README, "Command line", lists them.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Other = 1;
    /// <summary>A usage error, or the broker refused a value (400 and the other malformed-request statuses).</summary>
    public const int Usage = 2;
    public const int NotFound = 3;
    /// <summary>409: no sandbox available, the lease is not active, a limit reached, a conflicting state.</summary>
    public const int Conflict = 4;
    /// <summary>401 and 403: no token, a bad or revoked one, another tenant's resource, a missing admin scope.</summary>
    public const int Auth = 5;
    /// <summary>Rate limited, overloaded, unavailable, no answer: nothing is wrong with the call; retry later.</summary>
    public const int Transient = 6;
    /// <summary>Stopped by Ctrl-C.</summary>
    public const int Interrupted = 130;

    public static int For(BrokerApiException e) => e.Status switch
    {
        HttpStatusCode.BadRequest or HttpStatusCode.MethodNotAllowed or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.RequestUriTooLong
            or HttpStatusCode.UnsupportedMediaType or HttpStatusCode.RequestHeaderFieldsTooLarge => Usage,
        HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => Auth,
        HttpStatusCode.NotFound => NotFound,
        HttpStatusCode.Conflict => Conflict,
        _ when e.IsTransient => Transient,
        _ => Other,
    };
}
