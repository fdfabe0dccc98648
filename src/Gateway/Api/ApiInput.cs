using System.Globalization;
using System.Text.Json;

namespace SandboxBroker.Gateway.Api;

/// <summary>
/// The one check every string entering the API passes before it reaches a grain, Postgres or a log: route values,
/// query parameters, headers that become data, JSON body strings (keys included) and webhook fields. A control
/// character (C0, DEL, C1: tab and newline too) or an unpaired surrogate is refused with 400 INVALID_ARGUMENT naming
/// the field. Postgres cannot store NUL in text and an unpaired surrogate is not encodable as UTF-8, so letting them
/// through turns bad input into a database error; the others have no meaning in a name, key, id or filter.
/// </summary>
public static class ApiInput
{
    /// <summary>The index of the first character not accepted in a string from the outside, or -1.</summary>
    public static int IndexOfForbidden(ReadOnlySpan<char> value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsControl(c))
            {
                return i;
            }
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
                continue;
            }
            if (char.IsSurrogate(c))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>Why <paramref name="value"/> is refused, or null when it is acceptable.</summary>
    public static string? Problem(ReadOnlySpan<char> value, string what)
    {
        var at = IndexOfForbidden(value);
        if (at < 0)
        {
            return null;
        }
        var c = value[at];
        var kind = char.IsSurrogate(c) ? "an unpaired surrogate" : "a control character";
        return $"{what} contains {kind} (U+{(int)c:X4} at position {at.ToString(CultureInfo.InvariantCulture)}); control characters are not accepted";
    }

    /// <summary>Input echoed in a message or a log, with every refused character shown as '?'.</summary>
    public static string Printable(string value)
    {
        var at = IndexOfForbidden(value);
        if (at < 0)
        {
            return value;
        }
        var chars = value.ToCharArray();
        for (var i = at; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsControl(chars[i]) || char.IsSurrogate(chars[i]))
            {
                chars[i] = '?';
            }
        }
        return new string(chars);
    }

    /// <summary><paramref name="value"/> when acceptable; otherwise a 400 naming <paramref name="field"/>.</summary>
    public static string? Text(string? value, string field)
    {
        if (value is not null && Problem(value, $"'{field}'") is { } problem)
        {
            throw ApiError.BadRequest(field, problem).ToException();
        }
        return value;
    }

    /// <summary>
    /// Every route value and query parameter of the request, named as the API names fields (snake_case). Runs after
    /// routing and authorization, before the endpoint: handlers only ever see values that passed.
    /// </summary>
    public static void CheckRouteAndQuery(HttpContext context)
    {
        foreach (var (name, value) in context.Request.RouteValues)
        {
            if (value is string text)
            {
                Text(text, FieldName(name));
            }
        }
        foreach (var (name, values) in context.Request.Query)
        {
            if (Problem(name, "a query parameter name") is { } problem)
            {
                throw ApiError.BadRequest("query", problem).ToException();
            }
            foreach (var value in values)
            {
                Text(value, name);
            }
        }
    }

    /// <summary>The middleware form of <see cref="CheckRouteAndQuery"/>.</summary>
    public static Task CheckRequestAsync(HttpContext context, RequestDelegate next)
    {
        CheckRouteAndQuery(context);
        return next(context);
    }

    /// <summary>A header that becomes data (a label, a claim key): absent or empty is null, anything refused is a 400 naming the header.</summary>
    public static string? Header(HttpRequest request, string header, int maxLength)
    {
        var values = request.Headers[header];
        if (values.Count > 1)
        {
            throw ApiError.BadRequest(header, $"the {header} header is given more than once").ToException();
        }
        var value = Text(values.Count == 0 ? null : values[0], header);
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }
        return value.Length <= maxLength
            ? value
            : throw ApiError.BadRequest(header, $"the {header} header is at most {maxLength} characters").ToException();
    }

    private static string FieldName(string routeParameter) => JsonNamingPolicy.SnakeCaseLower.ConvertName(routeParameter);
}
