using System.Net;
using System.Net.Sockets;

namespace SandboxBroker.Storage;

/// <summary>Checks made before a host starts anything, each failing with one line an operator can act on.</summary>
public static class StartupChecks
{
    /// <summary>Binds and releases the port, so a busy one is named before start rather than found half-way.</summary>
    public static void EnsurePortFree(IPAddress address, int port, string what)
    {
        try
        {
            using var listener = new TcpListener(address, port);
            listener.Start();
        }
        catch (SocketException)
        {
            throw new StartupException($"{what} {address}:{port} is already in use");
        }
    }
}
