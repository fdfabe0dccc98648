using Microsoft.Extensions.Logging;

namespace SandboxBroker.Grains;

/// <summary>
/// The undo of the steps a multi-step operation has done so far, run newest first when a later step fails. Each undo
/// is best effort: a failure is logged and the next one still runs (what an undo leaves behind, the owner's check and
/// the reconciler find).
/// </summary>
public sealed class UndoSteps(ILogger logger, string subject)
{
    private readonly Stack<(string What, Func<Task> Undo)> _steps = new();

    public void Add(string what, Func<Task> undo) => _steps.Push((what, undo));

    public async Task RunAsync()
    {
        while (_steps.TryPop(out var step))
        {
            try
            {
                await step.Undo();
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "{Subject}: could not {What}", subject, step.What);
            }
        }
    }
}
