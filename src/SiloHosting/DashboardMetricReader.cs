using System.Reflection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Orleans.Dashboard;

namespace SandboxBroker.Silo;

/// <summary>
/// Feeds the dashboard's silo counters every <see cref="DashboardSettings.CounterUpdateInterval"/> instead of every second.
/// The dashboard package reads Orleans' metrics through an OpenTelemetry reader that its internal host builds with a fixed
/// one-second interval. Two of the gauges that reader collects walk every activation of the silo, one of them under the
/// catalog lock that creating an activation takes as well: 16 % of the silo's samples at 2,000 offered leases a second
/// (docs/BENCHMARKS.md, round 12), and new activations wait while it walks. Started after the package's host, this
/// service disposes that reader and builds the same one (Orleans' meter into the package's exporter) at the configured
/// interval. Should a package upgrade move those internals, the package's reader is left running and a warning says so:
/// the counters stay right, only dearer.
/// </summary>
internal sealed partial class DashboardMetricReader(
    IServiceProvider services,
    TimeSpan interval,
    ILogger<DashboardMetricReader> logger) : IHostedService, IDisposable
{
    // Where Microsoft.Orleans.Dashboard 10.4.2 keeps them (Directory.Packages.props pins the version; the dashboard tests
    // fail if this service stops finding them).
    private const string PackageHostType = "Orleans.Dashboard.DashboardHost";
    private const string PackageHostReaderField = "_meterProvider";
    private const string PackageExporterType = "Orleans.Dashboard.Implementation.DashboardTelemetryExporter";
    private const string OrleansMeter = "Microsoft.Orleans";

    private MeterProvider? _reader;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var packageHost = services.GetServices<IHostedService>().FirstOrDefault(s => s.GetType().FullName == PackageHostType);
        var readerField = packageHost?.GetType().GetField(PackageHostReaderField, BindingFlags.Instance | BindingFlags.NonPublic);
        var exporterType = typeof(DashboardOptions).Assembly.GetType(PackageExporterType);
        if (readerField?.GetValue(packageHost) is not MeterProvider packageReader
            || exporterType is null
            || services.GetService(exporterType) is not BaseExporter<Metric> exporter)
        {
            LogPackageReaderKept(logger, PackageHostType, PackageExporterType);
            return Task.CompletedTask;
        }

        // Disposing the package's provider shuts its reader down; the exporter (a singleton that only forwards each batch to
        // the silo's dashboard service) goes on serving the reader built here.
        packageReader.Dispose();
        var milliseconds = (int)interval.TotalMilliseconds;
        _reader = Sdk.CreateMeterProviderBuilder()
            .AddMeter(OrleansMeter)
            .AddReader(new PeriodicExportingMetricReader(exporter, milliseconds, milliseconds))
            .Build();
        LogReaderReplaced(logger, interval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _reader?.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "The dashboard reads Orleans' metrics every {Interval}")]
    private static partial void LogReaderReplaced(ILogger logger, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "The dashboard package's one-second metric reader is kept: {HostType} or {ExporterType} is not where this version of the silo expects it")]
    private static partial void LogPackageReaderKept(ILogger logger, string hostType, string exporterType);
}
