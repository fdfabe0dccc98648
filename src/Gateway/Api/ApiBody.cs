using System.Text.Json;

namespace SandboxBroker.Gateway.Api;

/// <summary>Reads a JSON request body, turning every kind of malformed input into a 400 that names the field.</summary>
public static class ApiBody
{
    /// <summary>
    /// The body as <typeparamref name="T"/>; <paramref name="empty"/> when there is no body at all. A body of JSON
    /// <c>null</c> is not "no body": the endpoint wants an object, so it is refused like an array or a number.
    /// </summary>
    public static async Task<T> ReadAsync<T>(HttpContext context, T empty) where T : class
    {
        var request = context.Request;
        if (request.ContentLength == 0 || (request.ContentLength is null && !request.Headers.ContainsKey("Transfer-Encoding")))
        {
            return empty;
        }
        if (request.ContentType is { } type && !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) &&
            !type.Contains("+json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiError(StatusCodes.Status415UnsupportedMediaType, GatewayErrorCodes.UnsupportedMediaType,
                $"the body must be application/json, not '{ApiInput.Printable(type)}'", "content-type").ToException();
        }
        T? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<T>(request.Body, ApiJson.RequestOptions, context.RequestAborted);
        }
        catch (RefusedTextException e)
        {
            var field = FieldOf(e.Path);
            throw ApiError.BadRequest(field, $"'{field}': {e.Message}").ToException();
        }
        catch (JsonException e)
        {
            var field = FieldOf(e.Path);
            var message = field == "body" ? "the body is not a valid JSON object"
                : e.InnerException is InvalidOperationException ? $"'{field}' is not valid text (an escape that is no UTF-16)"
                : e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? $"unknown field '{field}'"
                : e.Message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase) ? $"'{field}' is given more than once"
                : $"'{field}' has a value of the wrong type or format";
            throw ApiError.BadRequest(field, message).ToException();
        }
        return body ?? throw ApiError.BadRequest("body", "the body must be a JSON object, not null").ToException();
    }

    /// <summary>
    /// The field a serializer path names ("$.labels.team" is "labels.team"); cut before a refused character, so a
    /// bad key is reported as its object ("labels") and never echoed.
    /// </summary>
    private static string FieldOf(string? path)
    {
        var field = string.IsNullOrEmpty(path) ? "" : path.TrimStart('$', '.');
        if (ApiInput.IndexOfForbidden(field) is var at and >= 0)
        {
            var cut = field[..at];
            var end = Math.Max(cut.LastIndexOf('.'), cut.LastIndexOf('['));
            field = end > 0 ? cut[..end] : "";
        }
        return field.Length == 0 ? "body" : field;
    }
}
