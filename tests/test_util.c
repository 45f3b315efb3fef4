/* Tests of the byte search helpers that the prefilter and ranking share:
** substring search with and without a pair set, and line ends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

/* Whether needle occurs in hay, by the plain definition. */
static int occurs(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    if (needle_len == 0)
        return 1;
    for (size_t i = 0; i + needle_len <= hay_len; i++)
        if (memcmp(hay + i, needle, needle_len) == 0)
            return 1;
    return 0;
}

static int search_pairs(const char *hay, const char *needle)
{
    struct pair_set set;
    pair_set_build(&set, hay, strlen(hay));
    return find_bytes_in(hay, strlen(hay), &set, needle, strlen(needle));
}

static void test_pair_set_cases(void)
{
    const char *line = "connect to 192.0.2.7:25 failed: Connection refused";
    CHECK(search_pairs(line, "failed") == 1);
    CHECK(search_pairs(line, "refused") == 1);
    CHECK(search_pairs(line, "f") == 1);
    CHECK(search_pairs(line, "") == 1);
    /* "qz" is a pair the line lacks. */
    CHECK(search_pairs(line, "qz") == 0);
    /* Every pair of "failed to" is in the line, yet the text is not. */
    CHECK(search_pairs("to failed: ed t", "failed to") == 0);
    /* Bytes from 0x80 up share one class and still need the search. */
    CHECK(search_pairs("caf\xc3\xa9 ok", "\xc3\xa9") == 1);
    CHECK(search_pairs("caf\xc3\xa9 ok", "\xc3\xa8") == 0);
    CHECK(search_pairs("", "a") == 0);
}

/* The pair set may only skip searches: on random texts over a small
** alphabet, where most pairs occur, both searches agree with the plain one. */
static void test_pair_set_random(void)
{
    static const char alphabet[] = "abcAB01 .:-\x80\xff";
    uint32_t state = 12345;
    int disagreements = 0, found = 0;
    for (int round = 0; round < 20000; round++) {
        char hay[96], needle[8];
        size_t hay_len = 0, needle_len;
        state = state * 1103515245u + 12345u;
        hay_len = (state >> 16) % sizeof hay;
        for (size_t i = 0; i < hay_len; i++) {
            state = state * 1103515245u + 12345u;
            hay[i] = alphabet[(state >> 16) % (sizeof alphabet - 1)];
        }
        state = state * 1103515245u + 12345u;
        needle_len = 1 + (state >> 16) % (sizeof needle - 1);
        for (size_t i = 0; i < needle_len; i++) {
            state = state * 1103515245u + 12345u;
            needle[i] = alphabet[(state >> 16) % (sizeof alphabet - 1)];
        }
        struct pair_set set;
        pair_set_build(&set, hay, hay_len);
        int expected = occurs(hay, hay_len, needle, needle_len);
        found += expected;
        disagreements += find_bytes(hay, hay_len, needle, needle_len) != expected;
        disagreements += find_bytes_in(hay, hay_len, &set, needle, needle_len) != expected;
    }
    CHECK(disagreements == 0);
    CHECK(found > 1000); /* both outcomes were tried */
    CHECK(found < 19000);
}

static void test_line_end_finds_first_break(void)
{
    const char *text = "0123456789abcdef0123456789\rabc\n";
    CHECK(line_end(text, strlen(text)) == 26);
    CHECK(line_end("no break", 8) == 8);
    CHECK(line_end("\n", 1) == 0);
    CHECK(line_end("", 0) == 0);
}

int main(void)
{
    test_pair_set_cases();
    test_pair_set_random();
    test_line_end_finds_first_break();
    return check_summary();
}
