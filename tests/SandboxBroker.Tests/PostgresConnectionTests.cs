using Npgsql;
using SandboxBroker.Storage;

namespace SandboxBroker.Tests;

/// <summary>The connection settings the broker adds for its Postgres traffic, and what an operator's string keeps.</summary>
public sealed class PostgresConnectionTests
{
    [Fact]
    public void A_plain_connection_string_gets_no_reset_on_close_and_auto_prepare()
    {
        var tuned = new NpgsqlConnectionStringBuilder(PostgresConnection.Tuned("Host=db;Port=5432;Database=broker;Username=u;Password=p"));

        Assert.True(tuned.NoResetOnClose);
        Assert.Equal(64, tuned.MaxAutoPrepare);
        Assert.Equal(("db", 5432, "broker", "u"), (tuned.Host, tuned.Port, tuned.Database, tuned.Username));
    }

    [Theory]
    [InlineData("Host=db;No Reset On Close=false;Max Auto Prepare=0")]
    [InlineData("Host=db;NoResetOnClose=false;MaxAutoPrepare=0")]
    public void What_the_operator_set_is_kept(string connectionString)
    {
        var tuned = new NpgsqlConnectionStringBuilder(PostgresConnection.Tuned(connectionString));

        Assert.False(tuned.NoResetOnClose);
        Assert.Equal(0, tuned.MaxAutoPrepare);
    }

    [Fact]
    public void A_malformed_string_is_left_for_the_start_up_check_to_report()
    {
        Assert.Equal("Host=db;Nonsense Key=1", PostgresConnection.Tuned("Host=db;Nonsense Key=1"));
        var e = Assert.Throws<StartupException>(() => PostgresConnection.CreateDataSource("Host=db;Nonsense Key=1", "test"));
        Assert.Contains("not valid", e.Message);
    }
}
