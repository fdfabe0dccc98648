using SandboxBroker.Gateway.Api;

namespace SandboxBroker.Tests.Api;

/// <summary>Every exception reaching the gateway becomes a status a client can act on.</summary>
public sealed class ApiErrorMappingTests
{
    [Fact]
    public void Postgres_being_away_is_a_503_to_retry_not_a_500()
    {
        var direct = ApiMiddleware.Map(new Npgsql.NpgsqlException("connection refused"));
        Assert.Equal((503, "UNAVAILABLE"), (direct.Status, direct.Code));
        Assert.NotNull(direct.RetryAfterSeconds);

    }

    [Fact]
    public void A_value_Postgres_refuses_is_a_400_not_a_503_to_retry()
    {
        var refused = ApiMiddleware.Map(new Npgsql.PostgresException("invalid byte sequence for encoding \"UTF8\": 0x00", "ERROR", "ERROR", "22021"));
        Assert.Equal((400, "INVALID_ARGUMENT"), (refused.Status, refused.Code));
        Assert.Null(refused.RetryAfterSeconds);
        var restarting = ApiMiddleware.Map(new Npgsql.PostgresException("the database system is shutting down", "FATAL", "FATAL", "57P03"));
        Assert.Equal((503, "UNAVAILABLE"), (restarting.Status, restarting.Code));
    }

    [Fact]
    public async Task A_database_error_inside_a_grain_reaches_the_caller_as_a_503()
    {
        await using var broker = await Infrastructure.BrokerCluster.StartAsync(silos: 1);
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => broker.Grains.GetGrain<IProbeGrain>("db").FailWithDatabaseError());
        var error = ApiMiddleware.Map(failure);
        Assert.True((error.Status, error.Code) == (503, "UNAVAILABLE"), $"{failure.GetType()}: {failure.Message} mapped to {error}");
    }

    [Fact]
    public async Task A_server_error_inside_a_grain_reaches_the_caller_as_a_503()
    {
        // Orleans carries a PostgresException across without its own fields: its SqlState arrives null.
        await using var broker = await Infrastructure.BrokerCluster.StartAsync(silos: 1);
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => broker.Grains.GetGrain<IProbeGrain>("db").FailWithPostgresError("57P01"));
        var error = ApiMiddleware.Map(failure);
        Assert.True((error.Status, error.Code) == (503, "UNAVAILABLE"), $"{failure.GetType()}: {failure.Message} mapped to {error}");
    }

    [Fact]
    public void A_Postgres_error_without_its_state_is_a_503_to_retry()
    {
        // As one from a silo arrives: the exception's type, none of its fields.
        var bare = (Npgsql.PostgresException)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(typeof(Npgsql.PostgresException));
        var error = ApiMiddleware.Map(bare);
        Assert.Equal((503, "UNAVAILABLE"), (error.Status, error.Code));
    }

    [Fact]
    public void Broker_codes_keep_their_meaning_and_unknown_failures_say_nothing_internal()
    {
        Assert.Equal(409, ApiMiddleware.Map(new BrokerException(ErrorCodes.NoSandboxesAvailable, "empty") { RetryAfterSeconds = 5 }).Status);
        Assert.Equal(403, ApiMiddleware.Map(new BrokerException(ErrorCodes.Forbidden, "not yours")).Status);
        Assert.Equal(503, ApiMiddleware.Map(new TimeoutException()).Status);
        var unknown = ApiMiddleware.Map(new InvalidOperationException("secret detail"));
        Assert.Equal((500, "INTERNAL"), (unknown.Status, unknown.Code));
        Assert.DoesNotContain("secret detail", unknown.Message);
    }
}
