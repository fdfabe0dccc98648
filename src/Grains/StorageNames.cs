namespace SandboxBroker.Grains;

public static class StorageNames
{
    /// <summary>
    /// The broker's group-committed storage (src/Persistence) for the grains on the hot path: claims, sandboxes, pools and
    /// names. Their index rows and audit events are written in the same statement as their state.
    /// </summary>
    public const string Broker = "broker";

    /// <summary>Orleans' ADO.NET storage, for the grains off the hot path (pool directory, reconcilers, GitHub issues).</summary>
    public const string AdoNet = "broker-adonet";
}
