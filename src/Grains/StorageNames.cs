namespace SandboxBroker.Grains;

public static class StorageNames
{
    /// <summary>The ADO.NET grain storage provider every broker grain persists to.</summary>
    public const string Broker = "broker";
}
