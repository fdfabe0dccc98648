namespace SandboxBroker.Gateway.Api;

/// <summary>Checks an acquire body and turns it into the grain's request, naming the field at fault.</summary>
public static class AcquireRequests
{
    private const int MaxLabels = 32;
    private static readonly TimeSpan MaxSeconds = TimeSpan.FromDays(365);

    public static AcquireRequest From(AcquireBody body, string tenant, string defaultOwner, string actor)
    {
        if (body.Pool is not null && !PoolName.IsValid(body.Pool))
        {
            throw ApiError.BadRequest("pool", PoolName.Rule).ToException();
        }
        var ttl = Seconds(body.TtlSeconds, "ttl_seconds");
        var idle = Seconds(body.IdleTimeoutSeconds, "idle_timeout_seconds");
        if (body.Labels is { } labels)
        {
            if (labels.Count > MaxLabels)
            {
                throw ApiError.BadRequest("labels", $"at most {MaxLabels} labels").ToException();
            }
            foreach (var (k, v) in labels)
            {
                // Nullable annotations do not reach a dictionary's values: a JSON null arrives as null.
                if (k.Length is 0 or > 63 || v is null || v.Length > 256)
                {
                    throw ApiError.BadRequest($"labels.{k}", "label keys are 1-63 characters, values strings of at most 256").ToException();
                }
            }
        }
        if (body.Name is { } name && (name.Length is 0 or > 63))
        {
            throw ApiError.BadRequest("name", "name is 1-63 characters (a template: {number}, {repo}, {key})").ToException();
        }
        if (body.Owner is { } owner && (owner.Length is 0 or > 200))
        {
            throw ApiError.BadRequest("owner", "owner is 1-200 characters").ToException();
        }
        return new AcquireRequest(body.Pool, tenant, body.Owner ?? defaultOwner, ttl, idle, body.Labels, body.Name, actor);
    }

    private static TimeSpan? Seconds(int? value, string field) => value switch
    {
        null => null,
        <= 0 => throw ApiError.BadRequest(field, $"{field} must be positive").ToException(),
        var s when TimeSpan.FromSeconds(s.Value) > MaxSeconds => throw ApiError.BadRequest(field, $"{field} is at most one year").ToException(),
        var s => TimeSpan.FromSeconds(s.Value),
    };
}
