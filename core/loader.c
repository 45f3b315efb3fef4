/*
** Loader: find record files, read them, and add the valid ones to an engine.
**
** Owns: folder walking (sorted, recursive, *.json only), file size limit,
** duplicate-id detection, the loaded/rejected counts.
** Depends on: record.c for validating one record.
*/
#define _DEFAULT_SOURCE /* d_type and DT_* in struct dirent */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define MAX_FOLDER_DEPTH 16

/* Folders already read by one load call, by device and inode, so that a
** symbolic link back up the tree is read once, not once per path to it. */
struct visited {
    struct {
        dev_t dev;
        ino_t ino;
    } *items;
    size_t count, cap;
};

/* 1 when path was visited before, 0 when it is now marked, -1 on failure. */
static int visit(struct visited *visited, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    for (size_t i = 0; i < visited->count; i++)
        if (visited->items[i].dev == st.st_dev && visited->items[i].ino == st.st_ino)
            return 1;
    if (visited->count == visited->cap) {
        size_t cap = visited->cap ? visited->cap * 2 : 16;
        void *items = realloc(visited->items, cap * sizeof *visited->items);
        if (items == NULL)
            return -1;
        visited->items = items;
        visited->cap = cap;
    }
    visited->items[visited->count].dev = st.st_dev;
    visited->items[visited->count].ino = st.st_ino;
    visited->count++;
    return 0;
}

static void index_insert(struct triage_engine *engine, size_t position);

static int grow_index(struct triage_engine *engine)
{
    size_t cap = engine->index_cap ? engine->index_cap * 2 : 1024;
    size_t *index = malloc(cap * sizeof *index);
    if (index == NULL)
        return -1;
    free(engine->index);
    engine->index = index;
    engine->index_cap = cap;
    for (size_t i = 0; i < cap; i++)
        index[i] = SIZE_MAX;
    for (size_t r = 0; r < engine->record_count; r++)
        index_insert(engine, r);
    return 0;
}

static void index_insert(struct triage_engine *engine, size_t position)
{
    const char *id = engine->records[position]->id;
    size_t mask = engine->index_cap - 1;
    size_t i = (size_t)hash_bytes(id, strlen(id)) & mask;
    while (engine->index[i] != SIZE_MAX)
        i = (i + 1) & mask;
    engine->index[i] = position;
}

size_t engine_find_index(const struct triage_engine *engine, const char *id)
{
    if (engine->index_cap == 0 || id == NULL)
        return SIZE_MAX;
    size_t mask = engine->index_cap - 1;
    size_t i = (size_t)hash_bytes(id, strlen(id)) & mask;
    while (engine->index[i] != SIZE_MAX) {
        if (strcmp(engine->records[engine->index[i]]->id, id) == 0)
            return engine->index[i];
        i = (i + 1) & mask;
    }
    return SIZE_MAX;
}

struct record *engine_find(const struct triage_engine *engine, const char *id)
{
    size_t i = engine_find_index(engine, id);
    return i == SIZE_MAX ? NULL : engine->records[i];
}

static int add_record(struct triage_engine *engine, struct record *record)
{
    struct record *existing = engine_find(engine, record->id);
    if (existing != NULL) {
        problem_add(&engine->problems, TRIAGE_ERROR, record->file, 0, 0, record->id, "id",
                    "duplicate id: already loaded from %s; this record is skipped", existing->file);
        record_free(record);
        return -1;
    }
    if (engine->record_count == engine->record_cap) {
        size_t cap = engine->record_cap ? engine->record_cap * 2 : 256;
        struct record **records = realloc(engine->records, cap * sizeof *records);
        if (records == NULL)
            goto out_of_memory;
        engine->records = records;
        engine->record_cap = cap;
    }
    /* The index grows before the record is added, so that a failure leaves
    ** the engine as it was. */
    if ((engine->record_count + 1) * 2 > engine->index_cap && grow_index(engine) != 0)
        goto out_of_memory;
    engine->records[engine->record_count++] = record;
    index_insert(engine, engine->record_count - 1);
    return 0;
out_of_memory:
    problem_add(&engine->problems, TRIAGE_ERROR, record->file, 0, 0, record->id, "-",
                "out of memory adding the record; it is skipped");
    record_free(record);
    return -1;
}

#define SUPPLEMENT_SUFFIX ".supplement.json"

static int is_supplement(const char *name)
{
    size_t n = strlen(name), k = strlen(SUPPLEMENT_SUFFIX);
    return n > k && strcmp(name + n - k, SUPPLEMENT_SUFFIX) == 0;
}

/* Read SLUG.supplement.json next to SLUG.json, if there is one. */
static void load_supplement(struct triage_engine *engine, struct record *record, const char *path)
{
    size_t n = strlen(path);
    if (n < 5 || is_supplement(path))
        return;
    char *supplement = dup_printf("%.*s%s", (int)(n - 5), path, SUPPLEMENT_SUFFIX);
    if (supplement == NULL || !path_exists(supplement)) {
        free(supplement);
        return;
    }
    char *text;
    size_t len;
    char err[256];
    if (read_file(supplement, RECORD_MAX_FILE_SIZE, &text, &len, err, sizeof err) != 0)
        problem_add(&engine->problems, TRIAGE_ERROR, supplement, 0, 0, record->id, "-", "%s", err);
    else
        record_add_supplement(record, supplement, text, len, &engine->problems);
    free(supplement);
}

static void load_file(struct triage_engine *engine, const char *path)
{
    char *text;
    size_t len;
    char err[256];
    if (read_file(path, RECORD_MAX_FILE_SIZE, &text, &len, err, sizeof err) != 0) {
        problem_add(&engine->problems, TRIAGE_ERROR, path, 0, 0, "-", "-", "%s", err);
        engine->rejected++;
        return;
    }
    struct record *record = record_from_json(path, text, len, &engine->problems);
    if (record != NULL)
        load_supplement(engine, record, path);
    if (record == NULL || add_record(engine, record) != 0) {
        engine->rejected++;
        return;
    }
    engine->loaded++;
    engine->prepared = 0;
}

static int ends_with_json(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".json") == 0;
}

static int skip_entry(const struct dirent *entry)
{
    return entry->d_name[0] != '.';
}

static void load_folder(struct triage_engine *engine, const char *path, int depth, struct visited *visited)
{
    struct dirent **entries;
    if (depth > MAX_FOLDER_DEPTH) {
        problem_add(&engine->problems, TRIAGE_WARNING, path, 0, 0, "-", "-",
                    "folder nesting deeper than %d levels; not read", MAX_FOLDER_DEPTH);
        return;
    }
    int seen = visit(visited, path);
    if (seen != 0) {
        problem_add(&engine->problems, TRIAGE_WARNING, path, 0, 0, "-", "-", "%s",
                    seen > 0 ? "folder already read through another path (a symbolic link loop?); not read again"
                             : "cannot read folder: stat failed or out of memory");
        return;
    }
    /* Sorted so that the load order, and with it the first of two duplicate
    ** ids, does not depend on the file system. */
    int n = scandir(path, &entries, skip_entry, alphasort);
    if (n < 0) {
        problem_add(&engine->problems, TRIAGE_ERROR, path, 0, 0, "-", "-", "cannot read folder");
        return;
    }
    for (int i = 0; i < n; i++) {
        char *child = dup_printf("%s/%s", path, entries[i]->d_name);
        if (child == NULL) {
            problem_add(&engine->problems, TRIAGE_ERROR, path, 0, 0, "-", "-", "out of memory reading '%s'; skipped",
                        entries[i]->d_name);
        } else {
            /* The entry's type spares a stat per record file; links and
            ** file systems that do not tell the type are asked. */
            unsigned char type = entries[i]->d_type;
            int is_dir = type == DT_DIR || ((type == DT_LNK || type == DT_UNKNOWN) && path_is_dir(child));
            if (is_dir)
                load_folder(engine, child, depth + 1, visited);
            else if (ends_with_json(entries[i]->d_name) && !is_supplement(entries[i]->d_name))
                load_file(engine, child);
        }
        free(child);
        free(entries[i]);
    }
    free(entries);
}

int triage_load_records(triage_engine *engine, const char *path)
{
    if (engine == NULL || path == NULL) {
        set_error("triage_load_records: engine and path are required");
        return -1;
    }
    if (!path_exists(path)) {
        set_error("cannot load records from '%s': no such file or folder", path);
        return -1;
    }
    size_t loaded = engine->loaded, rejected = engine->rejected;
    size_t len = strlen(path);
    char *clean = dup_string(path);
    if (clean == NULL) {
        set_error("out of memory");
        return -1;
    }
    while (len > 1 && clean[len - 1] == '/')
        clean[--len] = '\0';
    if (path_is_dir(clean)) {
        struct visited visited = {NULL, 0, 0};
        load_folder(engine, clean, 0, &visited);
        free(visited.items);
    } else {
        load_file(engine, clean);
    }
    free(clean);
    if ((engine->flags & TRIAGE_STRICT) && engine->rejected > rejected) {
        set_error("%zu record(s) under '%s' were rejected", engine->rejected - rejected, path);
        return -1;
    }
    return (int)(engine->loaded - loaded);
}
