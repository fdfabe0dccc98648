using System.Text.Json;

namespace SandboxBroker.Gateway.Api;

/// <summary>Reads a JSON request body, turning every kind of malformed input into a 400 that names the field.</summary>
public static class ApiBody
{
    /// <summary>The body as <typeparamref name="T"/>; <paramref name="empty"/> when there is no body at all.</summary>
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
                $"the body must be application/json, not '{type}'", "content-type").ToException();
        }
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(request.Body, ApiJson.Options, context.RequestAborted) ?? empty;
        }
        catch (JsonException e)
        {
            var field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
            var message = field == "body" ? "the body is not a valid JSON object"
                : e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? $"unknown field '{field}'"
                : $"'{field}' has a value of the wrong type or format";
            throw ApiError.BadRequest(field, message).ToException();
        }
    }
}
