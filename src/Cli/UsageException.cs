namespace SandboxBroker.Cli;

/// <summary>A value on the command line that cannot be used (exit 2), found before anything is sent.</summary>
public sealed class UsageException(string message) : Exception(message);
