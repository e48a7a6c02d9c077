/*
 * The C ABI as a C program sees it: every function in include/telemetry.h, every bad input
 * (NULL, invalid UTF-8, invalid JSON, absurd lengths, use after shutdown) with its precise
 * error code, out-parameters left untouched on failure, 8 threads capturing at once with
 * exact counts, and the log records the library keeps for its host to take. Built twice by
 * `make test-c`: plainly, and with AddressSanitizer (leak detection on), so a
 * use-after-free, a double free or a leak fails the run.
 *
 * Ends with "N passed, M failed" and exits non-zero when anything failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "telemetry.h"

static int passed = 0;
static int failed = 0;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (cond) {                                                       \
            passed++;                                                     \
        } else {                                                          \
            failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

/* Checks that `err` has `code`, prints its message otherwise, and frees it. */
static void expect_code(telemetry_error_t *err, telemetry_error_code_t code, const char *what) {
    telemetry_error_code_t got = telemetry_error_code(err);
    const char *message = telemetry_error_message(err);
    CHECK(got == code, "%s: code %d, expected %d (%s)", what, (int)got, (int)code, message);
    if (code != TELEMETRY_ERROR_CODE_OK) {
        CHECK(message != NULL && message[0] != '\0', "%s: the error has no message", what);
    }
    telemetry_error_free(err);
}

#define EXPECT_OK(call, what) expect_code((call), TELEMETRY_ERROR_CODE_OK, (what))

static telemetry_client_t *new_client(const char *config) {
    telemetry_client_t *client = NULL;
    EXPECT_OK(telemetry_client_new(config, strlen(config), &client), config);
    CHECK(client != NULL, "no client for %s", config);
    return client;
}

/* The value of `"key":N` in a compact JSON object, or -1. */
static long long json_number(const char *json, const char *key) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    const char *at = strstr(json, needle);
    return at ? strtoll(at + strlen(needle), NULL, 10) : -1;
}

static int count_occurrences(const char *haystack, const char *needle) {
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static long long stat_of(telemetry_client_t *client, const char *key) {
    char *json = NULL;
    EXPECT_OK(telemetry_client_stats(client, &json, NULL), "stats");
    long long v = json ? json_number(json, key) : -1;
    telemetry_string_free(json);
    return v;
}

/* A memory-sink client that ignores the process environment (no HOME: nothing on disk).
 * The long shutdown deadline matters under AddressSanitizer, where a debug build's worker
 * may need more than the default second to start: a worker that misses the deadline is
 * abandoned on purpose (never freed under its feet), which LeakSanitizer would report. */
static const char *MEMORY =
    "{\"product\":\"ctest\",\"version\":\"1.0\",\"sink\":\"memory\",\"environment\":{},"
    "\"queue_capacity\":100000,\"shutdown_timeout_ms\":60000}";

static void test_version_and_null_tolerance(void) {
    const char *v = telemetry_version();
    CHECK(v != NULL && strchr(v, '.') != NULL, "version %s", v ? v : "(null)");
    /* NULL is success: code OK, an empty message; every free accepts NULL. */
    CHECK(telemetry_error_code(NULL) == TELEMETRY_ERROR_CODE_OK, "code of NULL");
    CHECK(strcmp(telemetry_error_message(NULL), "") == 0, "message of NULL");
    telemetry_error_free(NULL);
    telemetry_string_free(NULL);
    telemetry_client_free(NULL);
    passed++;
}

static void test_client_new_errors(void) {
    telemetry_client_t *const sentinel = (telemetry_client_t *)(uintptr_t)0x1;
    telemetry_client_t *client = sentinel;
    const char *cfg = MEMORY;

    expect_code(telemetry_client_new(NULL, 10, &client), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "new: NULL config");
    expect_code(telemetry_client_new(cfg, strlen(cfg), NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "new: NULL out_client");
    const char bad_utf8[] = "{\"product\":\"\xff\xfe\"}";
    expect_code(telemetry_client_new(bad_utf8, sizeof bad_utf8 - 1, &client),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "new: invalid UTF-8");
    expect_code(telemetry_client_new("{\"product\":", 11, &client),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "new: truncated JSON");
    expect_code(telemetry_client_new("not json", 8, &client), TELEMETRY_ERROR_CODE_INVALID_JSON,
                "new: not JSON");
    const char unknown[] = "{\"product\":\"x\",\"sink\":\"memory\",\"colour\":\"red\"}";
    expect_code(telemetry_client_new(unknown, strlen(unknown), &client),
                TELEMETRY_ERROR_CODE_INVALID_CONFIG, "new: unknown key");
    const char empty_product[] = "{\"product\":\"\",\"sink\":\"memory\"}";
    expect_code(telemetry_client_new(empty_product, strlen(empty_product), &client),
                TELEMETRY_ERROR_CODE_INVALID_CONFIG, "new: empty product");
    const char plain_http[] =
        "{\"product\":\"x\",\"endpoint\":\"http://telemetry.example.com\",\"api_key\":\"k\"}";
    expect_code(telemetry_client_new(plain_http, strlen(plain_http), &client),
                TELEMETRY_ERROR_CODE_INVALID_CONFIG, "new: plain http to a remote host");
    const char no_key[] = "{\"product\":\"x\",\"endpoint\":\"https://eu.i.posthog.com\"}";
    expect_code(telemetry_client_new(no_key, strlen(no_key), &client),
                TELEMETRY_ERROR_CODE_INVALID_CONFIG, "new: posthog sink without api_key");
    /* An absurd length is refused before a single byte is read. */
    expect_code(telemetry_client_new(cfg, (size_t)1 << 40, &client), TELEMETRY_ERROR_CODE_TOO_LARGE,
                "new: 1 TiB length");
    expect_code(telemetry_client_new(cfg, SIZE_MAX, &client), TELEMETRY_ERROR_CODE_TOO_LARGE,
                "new: SIZE_MAX length");
    CHECK(client == sentinel, "out_client was written on failure");
}

static void test_capture_errors(void) {
    telemetry_client_t *client = new_client(MEMORY);
    bool enabled = false;
    EXPECT_OK(telemetry_client_is_enabled(client, &enabled), "is_enabled");
    CHECK(enabled, "a memory client with an empty environment is on");
    expect_code(telemetry_client_is_enabled(NULL, &enabled), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "is_enabled: NULL client");
    expect_code(telemetry_client_is_enabled(client, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "is_enabled: NULL out");

    expect_code(telemetry_client_capture(NULL, "e", 1, NULL, 0), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "capture: NULL client");
    expect_code(telemetry_client_capture(client, NULL, 1, NULL, 0),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "capture: NULL name");
    expect_code(telemetry_client_capture(client, "e", 1, NULL, 5),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "capture: NULL properties with a length");
    expect_code(telemetry_client_capture(client, "\xc3\x28", 2, NULL, 0),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "capture: invalid UTF-8 name");
    expect_code(telemetry_client_capture(client, "e", 1, "{\"a\":\"\xff\"}", 8),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "capture: invalid UTF-8 properties");
    expect_code(telemetry_client_capture(client, "e", 1, "{\"a\":", 5),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "capture: truncated properties");
    expect_code(telemetry_client_capture(client, "e", 1, "[1,2]", 5),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "capture: properties not an object");
    expect_code(telemetry_client_capture(client, "  ", 2, NULL, 0),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "capture: blank name");
    expect_code(telemetry_client_capture(client, "e", (size_t)-1, NULL, 0),
                TELEMETRY_ERROR_CODE_TOO_LARGE, "capture: (size_t)-1 length");
    expect_code(telemetry_client_capture(client, "e", 1, "{}", (size_t)1 << 27),
                TELEMETRY_ERROR_CODE_TOO_LARGE, "capture: 128 MiB properties");

    const char *bad_kind = "{\"event\":\"e\",\"properties\":{\"a\":1},\"kinds\":{\"a\":\"secret\"}}";
    expect_code(telemetry_client_capture_event(client, bad_kind, strlen(bad_kind)),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "capture_event: unknown kind");
    expect_code(telemetry_client_capture_event(client, "{\"properties\":{}}", 17),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "capture_event: no name");
    expect_code(telemetry_client_capture_event(client, "{", 1), TELEMETRY_ERROR_CODE_INVALID_JSON,
                "capture_event: truncated");
    expect_code(telemetry_client_capture_event(client, NULL, 0), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "capture_event: NULL");

    size_t count = 12345;
    const char *bad_batch = "[{\"event\":\"ok\"},{\"event\":\"\"}]";
    expect_code(telemetry_client_capture_batch(client, bad_batch, strlen(bad_batch), &count),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "capture_batch: one bad element");
    CHECK(count == 12345, "out_count written on failure: %zu", count);
    expect_code(telemetry_client_capture_batch(client, "{}", 2, &count),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "capture_batch: not an array");
    expect_code(telemetry_client_capture_batch(client, "[", 1, &count),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "capture_batch: truncated");

    /* None of the refused calls captured anything. */
    CHECK(stat_of(client, "captured") == 0, "captured after refusals: %lld",
          stat_of(client, "captured"));

    char *const sentinel = (char *)(uintptr_t)0x1;
    char *out = sentinel;
    size_t len = 777;
    expect_code(telemetry_client_memory_events(NULL, &out, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "memory_events: NULL client");
    expect_code(telemetry_client_memory_events(client, NULL, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "memory_events: NULL out");
    expect_code(telemetry_client_stats(client, NULL, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "stats: NULL out");
    expect_code(telemetry_client_decision(NULL, &out, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "decision: NULL client");
    expect_code(telemetry_client_preview(client, "{", 1, &out, &len),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "preview: truncated");
    expect_code(telemetry_client_preview(client, "{\"event\":\"\"}", 12, &out, &len),
                TELEMETRY_ERROR_CODE_INVALID_EVENT, "preview: empty name");
    CHECK(out == sentinel && len == 777, "out-parameters written on failure");
    expect_code(telemetry_client_flush(NULL, 10), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "flush: NULL client");
    expect_code(telemetry_client_shutdown(NULL, 10), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "shutdown: NULL client");
    telemetry_client_free(client);
}

static void test_capture_flush_read(void) {
    telemetry_client_t *client = new_client(MEMORY);
    const char *props = "{\"mode\":\"server\",\"collections\":3}";
    EXPECT_OK(telemetry_client_capture(client, "started", 7, props, strlen(props)), "capture");
    EXPECT_OK(telemetry_client_capture(client, "bare", 4, NULL, 0), "capture without properties");
    const char *ev =
        "{\"event\":\"collection_add\",\"properties\":{\"add_amount\":5,\"collection_uuid\":\"c1\"},"
        "\"kinds\":{\"collection_uuid\":\"hashed\"},"
        "\"batch\":{\"key\":\"add:c1\",\"max_size\":3000,\"sum\":[\"add_amount\"]}}";
    EXPECT_OK(telemetry_client_capture_event(client, ev, strlen(ev)), "capture_event");
    size_t count = 0;
    const char *batch = "[{\"event\":\"b1\"},{\"event\":\"b2\",\"properties\":{\"n\":1}}]";
    EXPECT_OK(telemetry_client_capture_batch(client, batch, strlen(batch), &count),
              "capture_batch");
    CHECK(count == 2, "capture_batch count %zu", count);
    EXPECT_OK(telemetry_client_capture_batch(client, "[]", 2, NULL), "empty batch, NULL count");
    EXPECT_OK(telemetry_client_flush(client, 5000), "flush");

    char *json = NULL;
    size_t len = 0;
    EXPECT_OK(telemetry_client_memory_events(client, &json, &len), "memory_events");
    CHECK(json && strlen(json) == len, "memory_events length");
    if (json) {
        CHECK(count_occurrences(json, "\"event\":\"started\"") == 1, "started delivered: %s", json);
        CHECK(count_occurrences(json, "\"event\":\"collection_add\"") == 1, "add delivered");
        CHECK(count_occurrences(json, "\"event\":\"b2\"") == 1, "batch delivered");
        CHECK(strstr(json, "\"c1\"") == NULL, "a hashed value went out in clear: %s", json);
        CHECK(strstr(json, "\"$geoip_disable\":true") != NULL, "no $geoip_disable");
    }
    telemetry_string_free(json);

    CHECK(stat_of(client, "captured") == 5, "captured %lld", stat_of(client, "captured"));
    CHECK(stat_of(client, "sent") == 5, "sent %lld", stat_of(client, "sent"));

    json = NULL;
    EXPECT_OK(telemetry_client_decision(client, &json, &len), "decision");
    if (json) {
        CHECK(strstr(json, "\"enabled\":true") != NULL, "decision %s", json);
        CHECK(strstr(json, "\"explanation\":\"telemetry is on") != NULL, "explanation %s", json);
    }
    telemetry_string_free(json);

    json = NULL;
    EXPECT_OK(telemetry_client_preview(client, ev, strlen(ev), &json, NULL), "preview");
    if (json) {
        CHECK(strstr(json, "\"event\":\"collection_add\"") != NULL, "preview %s", json);
        CHECK(strstr(json, "\"batch_size\":1") != NULL, "preview batch_size %s", json);
    }
    telemetry_string_free(json);

    /* After shutdown: captures and flushes are refused with SHUT_DOWN; reads still work. */
    EXPECT_OK(telemetry_client_shutdown(client, 1000), "shutdown");
    EXPECT_OK(telemetry_client_shutdown(client, 1000), "second shutdown");
    expect_code(telemetry_client_capture(client, "late", 4, NULL, 0), TELEMETRY_ERROR_CODE_SHUT_DOWN,
                "capture after shutdown");
    expect_code(telemetry_client_capture_event(client, ev, strlen(ev)),
                TELEMETRY_ERROR_CODE_SHUT_DOWN, "capture_event after shutdown");
    expect_code(telemetry_client_capture_batch(client, "[]", 2, NULL),
                TELEMETRY_ERROR_CODE_SHUT_DOWN, "capture_batch after shutdown");
    expect_code(telemetry_client_flush(client, 100), TELEMETRY_ERROR_CODE_SHUT_DOWN,
                "flush after shutdown");
    CHECK(stat_of(client, "sent") == 5, "stats after shutdown");
    telemetry_client_free(client);
}

static void test_off_client(void) {
    const char *cfg =
        "{\"product\":\"ctest\",\"profile\":\"chroma\",\"sink\":\"memory\","
        "\"environment\":{\"DO_NOT_TRACK\":\"1\"}}";
    telemetry_client_t *client = new_client(cfg);
    bool enabled = true;
    EXPECT_OK(telemetry_client_is_enabled(client, &enabled), "is_enabled (off)");
    CHECK(!enabled, "DO_NOT_TRACK=1 leaves it on");
    /* Off: a capture is accepted and does nothing, without even reading its arguments. */
    EXPECT_OK(telemetry_client_capture(client, "e", 1, "{not json", 9), "capture while off");
    EXPECT_OK(telemetry_client_flush(client, 100), "flush while off");
    CHECK(stat_of(client, "captured") == 0, "an off client counted a capture");
    char *json = NULL;
    EXPECT_OK(telemetry_client_decision(client, &json, NULL), "decision (off)");
    if (json) CHECK(strstr(json, "\"kind\":\"do_not_track\"") != NULL, "decided by %s", json);
    telemetry_string_free(json);
    telemetry_client_free(client);
}

static void test_no_memory_sink_and_timeout(void) {
    /* A loopback socket that listens but never accepts: the connection is queued by the
     * kernel and the request never gets an answer, so a short flush times out. The request
     * itself gives up after 300 ms, well inside the shutdown deadline, so the worker ends
     * cleanly (a worker still stuck at the deadline is abandoned, and its queue with it). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 16) == 0 &&
              getsockname(fd, (struct sockaddr *)&addr, &alen) == 0,
          "cannot listen on loopback");
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"product\":\"ctest\",\"endpoint\":\"http://127.0.0.1:%d\",\"api_key\":\"phc_c\","
             "\"environment\":{},\"request_timeout_ms\":300,\"max_retries\":0,"
             "\"queue_capacity\":16}",
             ntohs(addr.sin_port));
    telemetry_client_t *client = new_client(cfg);
    char *json = (char *)(uintptr_t)0x1;
    expect_code(telemetry_client_memory_events(client, &json, NULL),
                TELEMETRY_ERROR_CODE_NO_MEMORY_SINK, "memory_events on a posthog client");
    CHECK(json == (char *)(uintptr_t)0x1, "out written on failure");
    EXPECT_OK(telemetry_client_capture(client, "stuck", 5, NULL, 0), "capture (posthog)");
    expect_code(telemetry_client_flush(client, 100), TELEMETRY_ERROR_CODE_TIMEOUT,
                "flush to a server that never answers");
    EXPECT_OK(telemetry_client_shutdown(client, 30000), "shutdown with a stuck request");
    CHECK(stat_of(client, "sent") == 0, "sent %lld", stat_of(client, "sent"));
    CHECK(stat_of(client, "dropped_failed") + stat_of(client, "dropped_shutdown") == 1,
          "the unanswered event is not accounted for");
    CHECK(stat_of(client, "failed_requests") == 1, "failed_requests %lld",
          stat_of(client, "failed_requests"));
    telemetry_client_free(client);
    close(fd);
}

static void test_anonymize(void) {
    const char *req =
        "{\"secret_hex\":\"11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7\","
        "\"precision\":3,\"kind\":null,\"value\":\"my_collection\"}";
    char *json = NULL;
    size_t len = 0;
    EXPECT_OK(telemetry_anonymize(req, strlen(req), &json, &len), "anonymize");
    /* The first case of tests/vectors/anonymize.json. */
    CHECK(json && strcmp(json, "{\"value\":\"80ded56ea35a1d2c\"}") == 0, "anonymize: %s",
          json ? json : "(null)");
    telemetry_string_free(json);
    const char *drop =
        "{\"secret_hex\":\"11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7\","
        "\"precision\":3,\"kind\":\"dropped\",\"value\":1}";
    json = NULL;
    EXPECT_OK(telemetry_anonymize(drop, strlen(drop), &json, NULL), "anonymize dropped");
    CHECK(json && strcmp(json, "{\"dropped\":true}") == 0, "dropped: %s", json ? json : "(null)");
    telemetry_string_free(json);
    const char *short_secret = "{\"secret_hex\":\"ab\",\"precision\":3,\"value\":1}";
    expect_code(telemetry_anonymize(short_secret, strlen(short_secret), &json, NULL),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "anonymize: short secret");
    expect_code(telemetry_anonymize(req, strlen(req), NULL, NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "anonymize: NULL out");
}

#define THREADS 8
#define PER_THREAD 1000

struct worker {
    telemetry_client_t *client;
    int id;
    int errors;
};

static void *capture_many(void *arg) {
    struct worker *w = arg;
    char props[64];
    int n = snprintf(props, sizeof props, "{\"thread\":%d}", w->id);
    for (int i = 0; i < PER_THREAD; i++) {
        telemetry_error_t *err = telemetry_client_capture(w->client, "mt", 2, props, (size_t)n);
        if (err) w->errors++;
        telemetry_error_free(err);
        if (i % 500 == 0) {
            /* Readers run alongside the writers. */
            char *json = NULL;
            telemetry_error_free(telemetry_client_stats(w->client, &json, NULL));
            telemetry_string_free(json);
        }
    }
    return NULL;
}

static void test_threads(void) {
    telemetry_client_t *client = new_client(MEMORY);
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){client, i, 0};
        CHECK(pthread_create(&threads[i], NULL, capture_many, &workers[i]) == 0, "pthread_create");
    }
    int errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        errors += workers[i].errors;
    }
    CHECK(errors == 0, "%d captures failed", errors);
    EXPECT_OK(telemetry_client_flush(client, 10000), "flush after threads");
    long long want = (long long)THREADS * PER_THREAD;
    CHECK(stat_of(client, "captured") == want, "captured %lld", stat_of(client, "captured"));
    CHECK(stat_of(client, "sent") == want, "sent %lld", stat_of(client, "sent"));
    char *json = NULL;
    EXPECT_OK(telemetry_client_memory_events(client, &json, NULL), "memory_events after threads");
    if (json) {
        CHECK(count_occurrences(json, "\"event\":\"mt\"") == want, "delivered %d",
              count_occurrences(json, "\"event\":\"mt\""));
    }
    telemetry_string_free(json);
    telemetry_client_free(client);
}

/* Log records: telemetry_log_enable and telemetry_log_take. Runs after every other test, so
 * the records it sees are its own (keeping is off until it turns it on). */

/* The library's pending records as an owned JSON string, checked to be an array whose length
 * matches out_len; free it with telemetry_string_free. */
static char *take_logs(void) {
    char *json = NULL;
    size_t len = 0;
    EXPECT_OK(telemetry_log_take(&json, &len), "log_take");
    CHECK(json != NULL && strlen(json) == len, "log_take length %zu", len);
    CHECK(json != NULL && json[0] == '[' && json[len - 1] == ']', "not an array: %s",
          json ? json : "(null)");
    return json;
}

/* A chroma client whose ANONYMIZED_TELEMETRY is neither true nor false: the core warns once,
 * at build, that telemetry is off. */
static const char *UNRECOGNIZED =
    "{\"product\":\"ctest\",\"profile\":\"chroma\",\"sink\":\"memory\","
    "\"environment\":{\"ANONYMIZED_TELEMETRY\":\"maybe\"}}";
static const char *UNRECOGNIZED_WARNING = "ANONYMIZED_TELEMETRY has an unrecognized value";

static void build_unrecognized(void) { telemetry_client_free(new_client(UNRECOGNIZED)); }

/* The N of the "telemetry: N log records dropped" record, or 0. */
static long long dropped_note(const char *json) {
    const char *at = strstr(json, "\"message\":\"telemetry: ");
    for (; at; at = strstr(at + 1, "\"message\":\"telemetry: ")) {
        char *end = NULL;
        long long n = strtoll(at + strlen("\"message\":\"telemetry: "), &end, 10);
        if (end && strncmp(end, " log record", strlen(" log record")) == 0) return n;
    }
    return 0;
}

/* A TCP socket bound to a free loopback port and never listening: connections to it are
 * refused, and no other process can take the port while it is held. */
static int bound_not_listening(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
              getsockname(fd, (struct sockaddr *)&addr, &alen) == 0,
          "cannot bind on loopback");
    *port = ntohs(addr.sin_port);
    return fd;
}

static void test_log_take_errors_and_off_by_default(void) {
    size_t len = 12345;
    expect_code(telemetry_log_take(NULL, &len), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "log_take: NULL out_json");
    CHECK(len == 12345, "out_len written on failure");
    /* Nothing is kept before telemetry_log_enable(true). */
    build_unrecognized();
    char *json = take_logs();
    CHECK(json && strcmp(json, "[]") == 0, "kept while off: %s", json ? json : "(null)");
    telemetry_string_free(json);
}

static void test_log_consent_warning(void) {
    CHECK(telemetry_log_enable(true), "log_enable(true) keeps nothing");
    CHECK(telemetry_log_enable(true), "a second log_enable(true)");
    build_unrecognized();
    char *json = take_logs();
    if (json) {
        CHECK(count_occurrences(json, "\"level\":") == 1, "one record expected: %s", json);
        CHECK(count_occurrences(json, UNRECOGNIZED_WARNING) == 1, "the warning: %s", json);
        CHECK(strstr(json, "\"level\":\"warn\"") != NULL, "level: %s", json);
        CHECK(strstr(json, "\"target\":\"telemetry_core::") != NULL, "target: %s", json);
        CHECK(json_number(json, "unix_ms") > 1700000000000LL, "unix_ms: %s", json);
    }
    telemetry_string_free(json);
    /* Taken once: the next take is empty. */
    json = take_logs();
    CHECK(json && strcmp(json, "[]") == 0, "taken twice: %s", json ? json : "(null)");
    telemetry_string_free(json);
}

/* A fixed identity: without one (and without HOME) the worker warns that the install id is
 * kept in memory only, a record these tests do not want. */
static const char *FIXED_IDENTITY =
    "\"install_id\":\"0d7b2a8e-5c1f-4f4e-9a51-2f8c3b6d7e90\","
    "\"secret_hex\":\"11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7\"";

static void test_log_one_warning_per_failure_streak(void) {
    int port = 0;
    int fd = bound_not_listening(&port);
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"product\":\"ctest\",\"endpoint\":\"http://127.0.0.1:%d\",\"api_key\":\"phc_c\","
             "\"environment\":{},\"max_retries\":1,\"backoff_base_ms\":10,"
             "\"shutdown_timeout_ms\":60000,%s}",
             port, FIXED_IDENTITY);
    telemetry_client_t *client = new_client(cfg);
    EXPECT_OK(telemetry_client_capture(client, "a", 1, NULL, 0), "capture a");
    EXPECT_OK(telemetry_client_capture(client, "b", 1, NULL, 0), "capture b");
    expect_code(telemetry_client_flush(client, 30000), TELEMETRY_ERROR_CODE_NOT_DELIVERED,
                "flush to a refused port");
    /* The worker wrote the warning before the flush returned. */
    char *json = take_logs();
    if (json) {
        CHECK(count_occurrences(json, "\"level\":") == 1, "one record expected: %s", json);
        CHECK(strstr(json, "\"level\":\"warn\"") != NULL, "level: %s", json);
        CHECK(strstr(json, "dropped 2 events") != NULL, "says what was dropped: %s", json);
        CHECK(strstr(json, "127.0.0.1") != NULL, "names the endpoint: %s", json);
        CHECK(strstr(json, "retrying") == NULL, "promises a retry: %s", json);
    }
    telemetry_string_free(json);
    /* Still failing: the same streak, no second warning. */
    EXPECT_OK(telemetry_client_capture(client, "c", 1, NULL, 0), "capture c");
    expect_code(telemetry_client_flush(client, 30000), TELEMETRY_ERROR_CODE_NOT_DELIVERED,
                "second flush to a refused port");
    EXPECT_OK(telemetry_client_shutdown(client, 30000), "shutdown after failures");
    json = take_logs();
    CHECK(json && strcmp(json, "[]") == 0, "a second warning in one streak: %s",
          json ? json : "(null)");
    telemetry_string_free(json);
    CHECK(stat_of(client, "dropped_failed") == 3, "dropped_failed %lld",
          stat_of(client, "dropped_failed"));
    telemetry_client_free(client);
    close(fd);
}

static void test_log_bound(void) {
    /* 100 records with nobody taking: the first 64 are kept, the rest counted. */
    for (int i = 0; i < 100; i++) build_unrecognized();
    char *json = take_logs();
    if (json) {
        CHECK(count_occurrences(json, UNRECOGNIZED_WARNING) == 64, "kept %d",
              count_occurrences(json, UNRECOGNIZED_WARNING));
        CHECK(dropped_note(json) == 36, "dropped note %lld in %s", dropped_note(json), json);
        CHECK(strstr(json, "\"target\":\"telemetry_ffi::log\"") != NULL, "note target");
    }
    telemetry_string_free(json);
    json = take_logs();
    CHECK(json && strcmp(json, "[]") == 0, "the drop count was reported twice: %s",
          json ? json : "(null)");
    telemetry_string_free(json);
}

#define LOG_THREADS 8
#define LOG_PER_THREAD 20

static void *build_many_unrecognized(void *arg) {
    (void)arg;
    for (int i = 0; i < LOG_PER_THREAD; i++) build_unrecognized();
    return NULL;
}

static void test_log_threads(void) {
    /* Writers on 8 threads, one taker: every record is taken exactly once or counted as
     * dropped, never lost, never duplicated. */
    pthread_t threads[LOG_THREADS];
    for (int i = 0; i < LOG_THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, build_many_unrecognized, NULL) == 0,
              "pthread_create");
    }
    const long long want = (long long)LOG_THREADS * LOG_PER_THREAD;
    long long seen = 0;
    for (int round = 0; round < 20000 && seen < want; round++) {
        char *json = take_logs();
        if (json) seen += count_occurrences(json, UNRECOGNIZED_WARNING) + dropped_note(json);
        telemetry_string_free(json);
        nanosleep(&(struct timespec){.tv_nsec = 500 * 1000}, NULL);
    }
    for (int i = 0; i < LOG_THREADS; i++) pthread_join(threads[i], NULL);
    char *json = take_logs();
    if (json) seen += count_occurrences(json, UNRECOGNIZED_WARNING) + dropped_note(json);
    telemetry_string_free(json);
    CHECK(seen == want, "%lld records taken or counted, %lld written", seen, want);
}

static void test_log_disable(void) {
    build_unrecognized(); /* pending when keeping stops: discarded */
    CHECK(!telemetry_log_enable(false), "log_enable(false) says records are kept");
    build_unrecognized(); /* written while off: never kept */
    char *json = take_logs();
    CHECK(json && strcmp(json, "[]") == 0, "kept after log_enable(false): %s",
          json ? json : "(null)");
    telemetry_string_free(json);
    CHECK(telemetry_log_enable(true), "log_enable(true) after false");
    json = take_logs();
    CHECK(json && strcmp(json, "[]") == 0, "records came back: %s", json ? json : "(null)");
    telemetry_string_free(json);
    CHECK(!telemetry_log_enable(false), "log_enable(false)");
}

int main(void) {
    test_version_and_null_tolerance();
    test_client_new_errors();
    test_capture_errors();
    test_capture_flush_read();
    test_off_client();
    test_no_memory_sink_and_timeout();
    test_anonymize();
    test_threads();
    test_log_take_errors_and_off_by_default();
    test_log_consent_warning();
    test_log_one_warning_per_failure_streak();
    test_log_bound();
    test_log_threads();
    test_log_disable();
    /* A client freed without an explicit shutdown shuts down on its own. */
    telemetry_client_t *client = new_client(MEMORY);
    EXPECT_OK(telemetry_client_capture(client, "e", 1, NULL, 0), "capture before free");
    telemetry_client_free(client);

    printf("%d passed, %d failed\n", passed, failed);
    /* LeakSanitizer reports at exit and may end the process without flushing stdio. */
    fflush(stdout);
    return failed == 0 ? 0 : 1;
}
