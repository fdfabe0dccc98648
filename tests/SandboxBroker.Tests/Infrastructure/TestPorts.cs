using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SandboxBroker.Tests.Infrastructure;

/// <summary>
/// Ports for the servers a test starts (silos, gateways, a private Postgres). A port the kernel hands out for binding to
/// port 0 comes from the ephemeral range, which it also uses for outgoing connections: between the test choosing it and
/// the server binding it (or while the fault harness has a killed silo down before its restart) another process's
/// connection to Postgres can take it, and the server then fails with "address already in use" (the long fault run did,
/// at start-up). These ports are below the ephemeral range, which the kernel never gives to a connection, each checked
/// free when handed out and never handed out twice by this process. They also stay out of the range Orleans' test cluster
/// takes its silo ports from (<see cref="TestClusterSiloPorts"/>): its allocator knows nothing of these, and a port handed
/// out here but not yet bound looks free to it.
/// </summary>
public static class TestPorts
{
    private const int Lowest = 10_000;

    /// <summary>Where Orleans.TestingHost's TestClusterPortAllocator picks silo ports (its gateway ports are 40000-50000, above these).</summary>
    private static readonly (int From, int To) TestClusterSiloPorts = (22_300, 30_000);

    // The one piece of shared state: which ports this test process has handed out (tests run in parallel).
    private static readonly object Gate = new();
    private static readonly HashSet<int> HandedOut = [];

    public static int Free()
    {
        var highest = EphemeralRangeStart() - 1;
        lock (Gate)
        {
            for (var attempt = 0; attempt < 1_000; attempt++)
            {
                var port = Random.Shared.Next(Lowest, highest + 1);
                if (port >= TestClusterSiloPorts.From && port < TestClusterSiloPorts.To)
                {
                    continue;
                }
                if (!HandedOut.Contains(port) && CanBind(port))
                {
                    HandedOut.Add(port);
                    return port;
                }
            }
        }
        throw new InvalidOperationException($"no free port between {Lowest} and {highest} after 1,000 tries");
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The first port of the kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range; 32768 elsewhere).</summary>
    private static int EphemeralRangeStart()
    {
        const string RangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        if (File.Exists(RangeFile)
            && int.TryParse(File.ReadAllText(RangeFile).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            && start > Lowest + 1_000)
        {
            return start;
        }
        return 32_768;
    }
}
