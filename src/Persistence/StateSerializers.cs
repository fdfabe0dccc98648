using Microsoft.Extensions.Options;
using Orleans.Storage;

namespace SandboxBroker.Persistence;

/// <summary>
/// Encodes grain state with a leading format byte, so rows of either format can be read whatever the configured one:
/// 'B' for Orleans' binary serializer, 'J' for Orleans' JSON serializer (also what the ADO.NET provider wrote, so its
/// rows carry over by prefixing them).
/// </summary>
public sealed class StateSerializers(OrleansGrainStorageSerializer binary, IGrainStorageSerializer json, IOptions<GroupCommitOptions> options)
{
    private const byte BinaryFormat = (byte)'B';
    private const byte JsonFormat = (byte)'J';

    private readonly StateFormat _format = options.Value.Format;

    public byte[] Serialize<T>(T state)
    {
        var (marker, serializer) = _format == StateFormat.Json ? (JsonFormat, json) : (BinaryFormat, (IGrainStorageSerializer)binary);
        var body = serializer.Serialize(state).ToMemory().Span;
        var payload = new byte[body.Length + 1];
        payload[0] = marker;
        body.CopyTo(payload.AsSpan(1));
        return payload;
    }

    public T Deserialize<T>(byte[] payload)
    {
        var body = new BinaryData(payload.AsMemory(1));
        var state = payload[0] switch
        {
            BinaryFormat => binary.Deserialize<T>(body),
            JsonFormat => json.Deserialize<T>(body),
            var other => throw new InvalidDataException($"unknown grain state format byte 0x{other:x2}"),
        };
        return state ?? throw new InvalidDataException("a stored grain state deserialized to null");
    }
}
