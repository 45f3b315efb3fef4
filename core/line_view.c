/*
** JSON log lines seen as their text.
**
** Docker's json-file driver, journalctl -o json, Go and Python structured
** loggers all write one JSON object per line, whose message carries JSON
** string escapes: a quote is \", a backslash \\, and Go writes < > & as
** \u003c \u003e \u0026. Record patterns are written for the message as the
** program printed it. So a line whose JSON object has escapes in its
** strings is matched and ranked on a view with them undone. Text before and
** after the object stays as it is. Every byte of the view remembers where
** its source starts in the line, so spans map back to the line as read.
**
** Two formats carry the whole message in one field and only metadata in
** the others: journald's export (journalctl -o json: "MESSAGE") and
** Docker's json-file driver ("log"). There the view is that field alone,
** so a pattern anchored at the start or end of a message, or preceded by
** ": ", meets the message and not the JSON around it. journald writes a
** message with control characters as an array of byte values, and both
** keep the terminal colour codes programs print; the view decodes the
** array and leaves the colour codes out. Other JSON logs (zap, logrus,
** slog, bunyan) keep the error in fields beside the message, so their
** whole object stays in the view.
**
** Owns: detecting such lines, building the view, mapping offsets back.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The code unit of the \uXXXX escape at p (6 bytes available), or -1. */
static long code_unit(const char *p)
{
    if (p[0] != '\\' || p[1] != 'u')
        return -1;
    long value = 0;
    for (int i = 2; i < 6; i++) {
        int digit = hex_digit_value((unsigned char)p[i]);
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* Write code point cp as UTF-8 into out; returns the byte count. */
static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the escape at line[i] (a backslash) into out. Returns the length
** of the escape in the line and sets *written, or 0 when it is no JSON
** escape (such as a Windows path's \d), which is then copied as it is. */
static size_t decode_escape(const char *line, size_t len, size_t i, char *out, size_t *written)
{
    if (i + 1 >= len)
        return 0;
    char c = line[i + 1];
    static const char simple_from[] = "\"\\/bfnrt";
    static const char simple_to[] = "\"\\/\b\f\n\r\t";
    const char *at = strchr(simple_from, c);
    if (c != '\0' && at != NULL) {
        out[0] = simple_to[at - simple_from];
        *written = 1;
        return 2;
    }
    if (c != 'u' || i + 6 > len)
        return 0;
    long unit = code_unit(line + i);
    if (unit < 0)
        return 0;
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        /* A high surrogate counts only with the low one that follows. */
        long low = i + 12 <= len ? code_unit(line + i + 6) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return 0;
        unsigned long cp = 0x10000 + (((unsigned long)unit - 0xD800) << 10) + ((unsigned long)low - 0xDC00);
        *written = put_utf8(out, cp);
        return 12;
    }
    if (unit >= 0xDC00 && unit <= 0xDFFF)
        return 0;
    if (unit == 0)
        return 0; /* a NUL would end C strings that carry the view */
    *written = put_utf8(out, (unsigned long)unit);
    return 6;
}

/* {==== message fields of journald and Docker lines */

/* Top-level keys whose value is the whole message. */
static const char *const MESSAGE_KEYS[] = {"MESSAGE", "log"};

/* The end of the JSON string whose opening quote is at line[i]: the
** offset of its closing quote, or len when it is not closed. */
static size_t string_end(const char *line, size_t len, size_t i)
{
    for (i++; i < len && line[i] != '"'; i++)
        if (line[i] == '\\')
            i++;
    return i < len ? i : len;
}

static int is_message_key(const char *key, size_t n)
{
    for (size_t k = 0; k < sizeof MESSAGE_KEYS / sizeof *MESSAGE_KEYS; k++)
        if (strlen(MESSAGE_KEYS[k]) == n && memcmp(MESSAGE_KEYS[k], key, n) == 0)
            return 1;
    return 0;
}

/* Find the message value of a line that is one JSON object with a
** MESSAGE_KEYS member. [*start, *end) is the string's content or the
** array's inside, and *array is 1 for an array. Returns 0 when none. */
static int message_field(const char *line, size_t len, size_t *start, size_t *end, int *array)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i + 1 >= len || line[i] != '{' || line[i + 1] != '"')
        return 0;
    size_t depth = 0, array_start = 0;
    int want_key = 0, message_key = 0, in_array = 0;
    for (; i < len; i++) {
        char c = line[i];
        if (c == '"') {
            size_t close = string_end(line, len, i);
            if (close == len)
                return 0;
            if (depth == 1 && want_key) {
                message_key = is_message_key(line + i + 1, close - i - 1);
                want_key = 0;
            } else if (depth == 1 && message_key) {
                *start = i + 1;
                *end = close;
                *array = 0;
                return 1;
            }
            i = close;
        } else if (c == '{' || c == '[') {
            if (depth == 1 && message_key && c == '[') {
                in_array = 1;
                array_start = i + 1;
            }
            want_key = ++depth == 1;
        } else if (c == '}' || c == ']') {
            if (depth-- <= 1)
                return 0;
            if (depth == 1 && in_array) {
                *start = array_start;
                *end = i;
                *array = 1;
                return 1;
            }
        } else if (depth == 1 && c == ',') {
            want_key = 1;
            message_key = 0;
        }
    }
    return 0;
}

static int reserve_view(struct line_view *view, size_t len)
{
    if (view->cap >= len + 1)
        return 0;
    char *text = realloc(view->text, len + 1);
    if (text != NULL)
        view->text = text;
    size_t *origin = realloc(view->origin, (len + 1) * sizeof *origin);
    if (origin != NULL)
        view->origin = origin;
    if (text == NULL || origin == NULL)
        return -1;
    view->cap = len + 1;
    return 0;
}

/* Drop terminal control sequences (ESC '[' parameters final byte) from the
** view, which colour codes are. */
static void drop_colour_codes(struct line_view *view)
{
    size_t out = 0;
    for (size_t i = 0; i < view->len;) {
        if (view->text[i] == '\x1b' && i + 1 < view->len && view->text[i + 1] == '[') {
            size_t k = i + 2;
            while (k < view->len && (unsigned char)view->text[k] >= 0x20 && (unsigned char)view->text[k] <= 0x3F)
                k++;
            if (k < view->len && (unsigned char)view->text[k] >= 0x40 && (unsigned char)view->text[k] <= 0x7E) {
                i = k + 1;
                continue;
            }
        }
        view->text[out] = view->text[i];
        view->origin[out++] = view->origin[i++];
    }
    view->origin[out] = view->origin[view->len];
    view->text[out] = '\0';
    view->len = out;
}

static size_t decode_escape(const char *line, size_t len, size_t i, char *out, size_t *written);

/* Append line[i] to the view: the decoded escape that starts there when
** escape is set and it is a valid JSON escape within len, else the byte.
** Returns the line bytes used and sets *decoded to 1 for an escape. An
** invalid escape is copied as written, so the byte after its backslash is
** read again as ordinary text. */
static size_t put_char(struct line_view *view, size_t *out, const char *line, size_t len, size_t i, int escape,
                       int *decoded)
{
    size_t written = 0, used = escape ? decode_escape(line, len, i, view->text + *out, &written) : 0;
    *decoded = used > 0;
    if (used == 0) {
        view->text[*out] = line[i];
        view->origin[(*out)++] = i;
        return 1;
    }
    for (size_t k = 0; k < written; k++)
        view->origin[*out + k] = i;
    *out += written;
    return used;
}

/* The view of a message field found by message_field. */
static int message_view(struct line_view *view, const char *line, size_t len, size_t start, size_t end, int array)
{
    if (reserve_view(view, len) != 0)
        return -1;
    size_t out = 0;
    for (size_t i = start; i < end;) {
        if (array) {
            /* Byte values, such as [27,91,51,49,109,69,114,114]. */
            if (line[i] < '0' || line[i] > '9') {
                i++;
                continue;
            }
            size_t at = i;
            unsigned value = 0;
            while (i < end && line[i] >= '0' && line[i] <= '9' && value <= 255)
                value = value * 10 + (unsigned)(line[i++] - '0');
            if (value == 0 || value > 255)
                continue; /* a NUL would end C strings that carry the view */
            view->text[out] = (char)value;
            view->origin[out++] = at;
            continue;
        }
        int decoded;
        i += put_char(view, &out, line, end, i, line[i] == '\\', &decoded);
    }
    view->text[out] = '\0';
    view->origin[out] = end;
    view->len = out;
    drop_colour_codes(view);
    return 1;
}

/* }==== */

/* Find the start of the JSON part of line: the first '{"' before the first
** backslash, or SIZE_MAX when the line has no escape in a JSON object. */
static size_t json_start(const char *line, size_t len)
{
    const char *slash = memchr(line, '\\', len);
    if (slash == NULL)
        return SIZE_MAX;
    size_t before = (size_t)(slash - line);
    for (size_t i = 0; i + 1 < before; i++)
        if (line[i] == '{' && line[i + 1] == '"')
            return i;
    return SIZE_MAX;
}

int line_view_possible(const char *line, size_t len)
{
    size_t start, end;
    int array;
    return json_start(line, len) != SIZE_MAX || message_field(line, len, &start, &end, &array);
}

int line_view_make(struct line_view *view, const char *line, size_t len)
{
    size_t start, end;
    int array;
    if (message_field(line, len, &start, &end, &array))
        return message_view(view, line, len, start, end, array);
    size_t from = json_start(line, len);
    if (from == SIZE_MAX)
        return 0;
    /* The view is never longer than the line: every escape is at least as
    ** long as the UTF-8 bytes it stands for, and a byte value in an array
    ** takes at least one digit. */
    if (reserve_view(view, len) != 0)
        return -1;
    /* Escapes are undone inside the strings of the object that starts at
    ** from, and nowhere else: text after the object, such as a Windows
    ** path, keeps its backslashes. */
    size_t out = 0, changed = 0, depth = 0;
    int in_string = 0, closed = 0;
    for (size_t i = 0; i < len;) {
        char c = line[i];
        int escape = 0, decoded;
        if (i >= from && !closed) {
            if (in_string && c == '\\')
                escape = 1;
            else if (c == '"')
                in_string = !in_string;
            else if (!in_string && (c == '{' || c == '['))
                depth++;
            else if (!in_string && (c == '}' || c == ']') && depth > 0 && --depth == 0)
                closed = 1;
        }
        i += put_char(view, &out, line, len, i, escape, &decoded);
        changed += (size_t)decoded;
    }
    if (changed == 0)
        return 0;
    view->text[out] = '\0';
    view->origin[out] = len;
    view->len = out;
    return 1;
}

size_t line_view_offset(const struct line_view *view, size_t at)
{
    return view->origin[at <= view->len ? at : view->len];
}

void line_view_free(struct line_view *view)
{
    free(view->text);
    free(view->origin);
    view->text = NULL;
    view->origin = NULL;
    view->len = view->cap = 0;
}
