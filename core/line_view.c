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
    return json_start(line, len) != SIZE_MAX;
}

int line_view_make(struct line_view *view, const char *line, size_t len)
{
    size_t from = json_start(line, len);
    if (from == SIZE_MAX)
        return 0;
    /* The view is never longer than the line: every escape is at least as
    ** long as the UTF-8 bytes it stands for. */
    if (view->cap < len + 1) {
        char *text = realloc(view->text, len + 1);
        if (text != NULL)
            view->text = text;
        size_t *origin = realloc(view->origin, (len + 1) * sizeof *origin);
        if (origin != NULL)
            view->origin = origin;
        if (text == NULL || origin == NULL)
            return -1;
        view->cap = len + 1;
    }
    /* Escapes are undone inside the strings of the object that starts at
    ** from, and nowhere else: text after the object, such as a Windows
    ** path, keeps its backslashes. */
    size_t out = 0, changed = 0, depth = 0;
    int in_string = 0, closed = 0;
    for (size_t i = 0; i < len;) {
        size_t written = 0, used = 0;
        char c = line[i];
        if (i >= from && !closed) {
            if (in_string && c == '\\')
                used = decode_escape(line, len, i, view->text + out, &written);
            else if (c == '"')
                in_string = !in_string;
            else if (!in_string && (c == '{' || c == '['))
                depth++;
            else if (!in_string && (c == '}' || c == ']') && depth > 0 && --depth == 0)
                closed = 1;
        }
        if (used == 0) {
            /* An invalid escape is copied as it is; the byte after its
            ** backslash is read again as ordinary text. */
            view->text[out] = c;
            view->origin[out++] = i++;
            continue;
        }
        for (size_t k = 0; k < written; k++)
            view->origin[out + k] = i;
        out += written;
        i += used;
        changed++;
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
