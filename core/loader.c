/*
** Loader: find record files, read them, and add the valid ones to an engine.
**
** Owns: folder walking (sorted, recursive, *.json only), reading the files
** of a folder on several threads, file size limit, duplicate-id detection,
** the loaded/rejected counts.
** Depends on: record.c for validating one record.
*/
#define _DEFAULT_SOURCE /* d_type and DT_* in struct dirent */
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
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

/* Whether a record file has a supplement beside it, as the folder walk saw. */
enum supplement_seen { SUPPLEMENT_UNKNOWN, SUPPLEMENT_LISTED, SUPPLEMENT_ABSENT };

/* Read SLUG.supplement.json next to SLUG.json, if there is one. */
static void load_supplement(struct problem_list *problems, struct record *record, const char *path,
                            enum supplement_seen seen)
{
    size_t n = strlen(path);
    if (n < 5 || is_supplement(path) || seen == SUPPLEMENT_ABSENT)
        return;
    char *supplement = dup_printf("%.*s%s", (int)(n - 5), path, SUPPLEMENT_SUFFIX);
    /* A listed supplement whose path is too long to open is skipped, as
    ** a stat of it would skip it. */
    if (supplement != NULL && seen == SUPPLEMENT_LISTED && strlen(supplement) >= PATH_MAX)
        seen = SUPPLEMENT_UNKNOWN;
    if (supplement == NULL || (seen == SUPPLEMENT_UNKNOWN && !path_exists(supplement))) {
        free(supplement);
        return;
    }
    char *text;
    size_t len;
    char err[256];
    if (read_file(supplement, RECORD_MAX_FILE_SIZE, &text, &len, err, sizeof err) != 0)
        problem_add(problems, TRIAGE_ERROR, supplement, 0, 0, record->id, "-", "%s", err);
    else
        record_add_supplement(record, supplement, text, len, problems);
    free(supplement);
}

/* One file of a load, or one problem of the folder walk, in load order.
** Files are read and validated on several threads, each into its own
** item, and then added in order, so that the problems and the first of
** two duplicate ids come out as a one-by-one load gives them. */
struct load_item {
    char *path;                   /* the record file; NULL for a walk problem */
    struct problem_list problems; /* found reading this item, in order */
    struct record *record;        /* the valid record, or NULL */
    enum supplement_seen supplement;
};

struct load_list {
    struct load_item *items;
    size_t count, cap;
    int failed; /* out of memory: some files were not listed */
    struct regex_cache *cache; /* compiled regexes of the load, or NULL */
};

/* Append an item to the list; returns it, or NULL when out of memory. */
static struct load_item *list_item(struct load_list *list)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 256;
        struct load_item *items = realloc(list->items, cap * sizeof *items);
        if (items == NULL) {
            list->failed = 1;
            return NULL;
        }
        list->items = items;
        list->cap = cap;
    }
    struct load_item *item = &list->items[list->count++];
    memset(item, 0, sizeof *item);
    return item;
}

/* Read and validate one record file into item; runs on any thread. */
static void read_item(struct load_item *item, struct regex_cache *cache)
{
    char *text;
    size_t len;
    char err[256];
    if (read_file(item->path, RECORD_MAX_FILE_SIZE, &text, &len, err, sizeof err) != 0) {
        problem_add(&item->problems, TRIAGE_ERROR, item->path, 0, 0, "-", "-", "%s", err);
        return;
    }
    item->record = record_from_json(item->path, text, len, cache, &item->problems);
    if (item->record != NULL)
        load_supplement(&item->problems, item->record, item->path, item->supplement);
}

static void read_listed(void *context, size_t i)
{
    struct load_list *list = context;
    struct load_item *item = &list->items[i];
    if (item->path != NULL)
        read_item(item, list->cache);
}

/* Add the item's problems and record to the engine; frees the item. */
static void add_item(struct triage_engine *engine, struct load_item *item)
{
    problem_list_move(&engine->problems, &item->problems);
    if (item->path != NULL) {
        if (item->record == NULL || add_record(engine, item->record) != 0) {
            engine->rejected++;
        } else {
            engine->loaded++;
            engine->prepared = 0;
        }
    }
    free(item->path);
}

/* Record a walk problem in its place in the load order. */
static void walk_problem(struct load_list *list, triage_severity severity, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void walk_problem(struct load_list *list, triage_severity severity, const char *path, const char *fmt, ...)
{
    struct load_item *item = list_item(list);
    if (item == NULL)
        return;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    problem_add(&item->problems, severity, path, 0, 0, "-", "-", "%s", message);
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

static void list_folder(struct load_list *list, const char *path, int depth, struct visited *visited);

static int by_name(const void *key, const void *entry)
{
    return strcoll(key, (*(const struct dirent *const *)entry)->d_name);
}

/* Tell whether a record file's supplement is among its folder's entries,
** which alphasort sorted. This spares a failed stat per record file, as
** most have no supplement. A link is left to a stat when the file is read. */
static enum supplement_seen supplement_listed(const char *name, struct dirent *const *siblings, int count)
{
    size_t n = strlen(name);
    char wanted[NAME_MAX + 32];
    if (n < 5 || n - 5 + sizeof SUPPLEMENT_SUFFIX > sizeof wanted)
        return SUPPLEMENT_UNKNOWN;
    memcpy(wanted, name, n - 5);
    memcpy(wanted + n - 5, SUPPLEMENT_SUFFIX, sizeof SUPPLEMENT_SUFFIX);
    struct dirent *const *found = bsearch(wanted, siblings, (size_t)count, sizeof *siblings, by_name);
    if (found == NULL)
        return SUPPLEMENT_ABSENT;
    return (*found)->d_type == DT_REG ? SUPPLEMENT_LISTED : SUPPLEMENT_UNKNOWN;
}

/* List one entry of the folder at path, one of its count sorted siblings:
** a record file, or a folder to walk. */
static void list_entry(struct load_list *list, const char *path, struct dirent *const *siblings, int count,
                       const struct dirent *entry, int depth, struct visited *visited)
{
    char *child = dup_printf("%s/%s", path, entry->d_name);
    if (child == NULL) {
        walk_problem(list, TRIAGE_ERROR, path, "out of memory reading '%s'; skipped", entry->d_name);
        return;
    }
    /* The entry's type spares a stat per record file; links and file
    ** systems that do not tell the type are asked. */
    unsigned char type = entry->d_type;
    int is_dir = type == DT_DIR || ((type == DT_LNK || type == DT_UNKNOWN) && path_is_dir(child));
    if (is_dir) {
        list_folder(list, child, depth + 1, visited);
    } else if (ends_with_json(entry->d_name) && !is_supplement(entry->d_name)) {
        struct load_item *item = list_item(list);
        if (item != NULL) {
            item->path = child;
            item->supplement = supplement_listed(entry->d_name, siblings, count);
            child = NULL;
        }
    }
    free(child);
}

/* Mark the folder at path visited and read its entries, sorted so that the
** load order, and with it the first of two duplicate ids, does not depend
** on the file system. Returns their number, or -1 after a walk problem. */
static int open_folder(struct load_list *list, const char *path, int depth, struct visited *visited,
                       struct dirent ***entries)
{
    if (depth > MAX_FOLDER_DEPTH) {
        walk_problem(list, TRIAGE_WARNING, path, "folder nesting deeper than %d levels; not read", MAX_FOLDER_DEPTH);
        return -1;
    }
    int seen = visit(visited, path);
    if (seen != 0) {
        walk_problem(list, TRIAGE_WARNING, path, "%s",
                     seen > 0 ? "folder already read through another path (a symbolic link loop?); not read again"
                              : "cannot read folder: stat failed or out of memory");
        return -1;
    }
    int n = scandir(path, entries, skip_entry, alphasort);
    if (n < 0)
        walk_problem(list, TRIAGE_ERROR, path, "cannot read folder");
    return n;
}

/* List the record files under path, sorted, with the walk's problems in
** their places. */
static void list_folder(struct load_list *list, const char *path, int depth, struct visited *visited)
{
    struct dirent **entries;
    int n = open_folder(list, path, depth, visited, &entries);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++)
        list_entry(list, path, entries, n, entries[i], depth, visited);
    for (int i = 0; i < n; i++)
        free(entries[i]);
    free(entries);
}

/* A folder with fewer record files than this per thread loads on one thread. */
#define FILES_PER_THREAD 64

/* One entry of the top folder, walked on its own thread in a parallel
** walk: its files and problems in order, and the folders it read. */
struct walk_part {
    const char *root;
    struct dirent *const *siblings; /* the top folder's entries */
    int sibling_count;
    const struct dirent *entry;
    int read; /* read the files found, not only list them */
    struct load_list list;
    struct visited visited;
};

/* In a top folder with at least this many entries per thread, the thread
** that walks an entry also reads its files, so reading overlaps walking.
** With fewer entries, one of them may hold most of the files, so they are
** read after the walk, spread over the threads. */
#define ENTRIES_PER_THREAD_TO_READ 8

/* Walk one entry of the top folder, and read the record files found there
** when part->read is set. */
static void walk_part(void *context, size_t i)
{
    struct walk_part *part = &((struct walk_part *)context)[i];
    list_entry(&part->list, part->root, part->siblings, part->sibling_count, part->entry, 0, &part->visited);
    if (!part->read)
        return;
    for (size_t k = 0; k < part->list.count; k++)
        if (part->list.items[k].path != NULL)
            read_item(&part->list.items[k], part->list.cache);
}

static int by_folder(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Whether some folder was read by two parts, which a one-thread walk would
** have read once. Each part's visited set starts with the shared root. */
static int parts_overlap(const struct walk_part *parts, size_t count, int *failed)
{
    size_t total = 0;
    for (size_t p = 0; p < count; p++)
        total += parts[p].visited.count - 1;
    uint64_t *folders = malloc((total ? total : 1) * 3 * sizeof *folders);
    if (folders == NULL) {
        *failed = 1;
        return 1;
    }
    size_t n = 0;
    for (size_t p = 0; p < count; p++)
        for (size_t v = 1; v < parts[p].visited.count; v++, n++) {
            folders[3 * n] = (uint64_t)parts[p].visited.items[v].dev;
            folders[3 * n + 1] = (uint64_t)parts[p].visited.items[v].ino;
            folders[3 * n + 2] = p;
        }
    qsort(folders, n, 3 * sizeof *folders, by_folder);
    int overlap = 0;
    for (size_t i = 1; i < n && !overlap; i++)
        overlap = by_folder(&folders[3 * (i - 1)], &folders[3 * i]) == 0;
    free(folders);
    return overlap;
}

static void free_list(struct load_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        problem_list_free(&list->items[i].problems);
        free(list->items[i].path);
        record_free(list->items[i].record);
    }
    free(list->items);
}

/* Walk the folder at path with one thread per entry of it, for a big
** knowledge base where reading the folders costs as much as a third of the
** load. The entries' lists are joined in order, so the result is the one
** of list_folder, with one exception that is checked afterwards: a folder
** reached from two entries (through a link), which one walk reads once.
** Returns 0, or -1 when the caller must walk on one thread instead. */
static int list_folder_parallel(struct load_list *list, const char *path, int *read)
{
    struct visited root = {NULL, 0, 0};
    struct dirent **entries;
    *read = 0;
    int n = open_folder(list, path, 0, &root, &entries);
    if (n < 0) {
        free(root.items);
        return 0; /* the problem is in the list, as a one-thread walk puts it */
    }
    struct walk_part *parts = calloc(n > 0 ? (size_t)n : 1, sizeof *parts);
    int rc = -1, failed = 0;
    int read_in_walk = (size_t)n >= ENTRIES_PER_THREAD_TO_READ * parallel_threads();
    if (parts != NULL) {
        for (int i = 0; i < n; i++) {
            parts[i].read = read_in_walk;
            parts[i].list.cache = list->cache;
            parts[i].root = path;
            parts[i].siblings = entries;
            parts[i].sibling_count = n;
            parts[i].entry = entries[i];
            /* The root is visited already in each part, as in one walk. */
            parts[i].visited.items = malloc(sizeof *root.items);
            if (parts[i].visited.items == NULL) {
                failed = 1;
                continue;
            }
            parts[i].visited.items[0] = root.items[0];
            parts[i].visited.count = parts[i].visited.cap = 1;
        }
        if (!failed) {
            parallel_for((size_t)n, 4, walk_part, parts);
            if (!parts_overlap(parts, (size_t)n, &failed)) {
                rc = 0;
                *read = read_in_walk;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (parts != NULL) {
            struct load_list *part = &parts[i].list;
            for (size_t k = 0; k < part->count && rc == 0; k++) {
                struct load_item *item = list_item(list);
                if (item == NULL) {
                    problem_list_free(&part->items[k].problems);
                    free(part->items[k].path);
                    record_free(part->items[k].record);
                } else {
                    *item = part->items[k];
                }
            }
            if (rc == 0) {
                list->failed |= part->failed;
                free(part->items);
            } else {
                free_list(part);
            }
            free(parts[i].visited.items);
        }
        free(entries[i]);
    }
    free(entries);
    free(parts);
    free(root.items);
    return rc;
}

static void load_folder(struct triage_engine *engine, const char *path, struct regex_cache *cache)
{
    struct load_list list = {.cache = cache};
    int read = 0;
    if (list_folder_parallel(&list, path, &read) != 0) {
        free_list(&list);
        memset(&list, 0, sizeof list);
        list.cache = cache;
        struct visited visited = {NULL, 0, 0};
        list_folder(&list, path, 0, &visited);
        free(visited.items);
    }
    if (!read)
        parallel_for(list.count, FILES_PER_THREAD, read_listed, &list);
    for (size_t i = 0; i < list.count; i++)
        add_item(engine, &list.items[i]);
    if (list.failed)
        problem_add(&engine->problems, TRIAGE_ERROR, path, 0, 0, "-", "-",
                    "out of memory listing the record files; some were not read");
    free(list.items);
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
    /* Only folders use the regex cache: a file alone compiles fast, and a
    ** cache file per record file would crowd the folder. */
    int is_dir = path_is_dir(clean);
    struct regex_cache *cache =
        (engine->flags & TRIAGE_NO_CACHE) || !is_dir ? NULL : regex_cache_open(clean, record_compile_salt());
    if (is_dir) {
        load_folder(engine, clean, cache);
    } else {
        struct load_item item = {.path = dup_string(clean)};
        if (item.path == NULL) {
            regex_cache_close(cache);
            free(clean);
            set_error("out of memory");
            return -1;
        }
        read_item(&item, cache);
        add_item(engine, &item);
    }
    engine->regex_cache_hits = engine->regex_cache_misses = 0;
    if (cache != NULL)
        regex_cache_counts(cache, &engine->regex_cache_hits, &engine->regex_cache_misses);
    regex_cache_close(cache);
    free(clean);
    if ((engine->flags & TRIAGE_STRICT) && engine->rejected > rejected) {
        set_error("%zu record(s) under '%s' were rejected", engine->rejected - rejected, path);
        return -1;
    }
    return (int)(engine->loaded - loaded);
}
