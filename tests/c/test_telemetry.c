/*
 * The C ABI as a C program sees it: every function in include/telemetry.h, every bad input
 * (NULL, invalid UTF-8, invalid JSON, absurd lengths, use after shutdown) with its precise
 * error code, out-parameters left untouched on failure, 8 threads capturing at once with
 * exact counts, usage statistics (declarations, label sets, recording through the library
 * and through a cell view, sections, the report, the Prometheus text, the endpoints and a
 * real loopback server, 8 threads recording one timing), the log records the library
 * keeps for its host to take, and error reports (handled errors and crashes: bad input,
 * scrubbing and PostHog's shape, rate limits, the crash deadline against a silent
 * endpoint, opted out, 8 threads). Built twice by
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

/* How many times slower than a plain run this one may be: TELEMETRY_TEST_SLOWDOWN (set by
 * `make memcheck` for valgrind, whose memcheck runs code 20 to 50 times slower). Deadlines
 * a test waits for, and the upper bounds of what it measures, are multiplied by it; the
 * lower bounds (a deadline is not cut short) stay. */
static int slowdown = 1;

static uint32_t slow_ms(uint32_t ms) { return ms * (uint32_t)slowdown; }

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
    const char no_ca[] = "{\"product\":\"x\",\"sink\":\"memory\","
                         "\"ca_file\":\"/nonexistent/telemetry-ca.pem\"}";
    expect_code(telemetry_client_new(no_ca, strlen(no_ca), &client),
                TELEMETRY_ERROR_CODE_INVALID_CONFIG, "new: a ca_file that does not exist");
    const char bad_roots[] = "{\"product\":\"x\",\"sink\":\"memory\",\"tls_roots\":\"system\"}";
    expect_code(telemetry_client_new(bad_roots, strlen(bad_roots), &client),
                TELEMETRY_ERROR_CODE_INVALID_CONFIG, "new: tls_roots neither bundled nor platform");
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
    EXPECT_OK(telemetry_client_flush(client, slow_ms(5000)), "flush");

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
    EXPECT_OK(telemetry_client_flush(client, slow_ms(10000)), "flush after threads");
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

/* Usage statistics: families, label sets, recording, the cell view, sections, the report,
 * the Prometheus text, the endpoints as a function and the loopback server. */

/* An opted-out client: usage statistics are the operator's and work all the same. */
static int bound_not_listening(int *port);

static const char *OFF =
    "{\"product\":\"ctest\",\"version\":\"1.0\",\"sink\":\"memory\","
    "\"environment\":{\"DO_NOT_TRACK\":\"1\"},"
    "\"install_id\":\"0d7b2a8e-5c1f-4f4e-9a51-2f8c3b6d7e90\","
    "\"secret_hex\":\"11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7\"}";

static telemetry_timing_family_t *timing_family(telemetry_client_t *client, const char *decl) {
    telemetry_timing_family_t *family = NULL;
    EXPECT_OK(telemetry_timing_family_new(client, decl, strlen(decl), &family), decl);
    CHECK(family != NULL, "no family for %s", decl);
    return family;
}

static telemetry_timing_t *timing_with(telemetry_timing_family_t *family, const char *labels) {
    telemetry_timing_t *timing = NULL;
    EXPECT_OK(telemetry_timing_family_with(family, labels, labels ? strlen(labels) : 0, &timing),
              labels ? labels : "(no labels)");
    CHECK(timing != NULL, "no timing for %s", labels ? labels : "(no labels)");
    return timing;
}

/* The report (or any JSON-writing call's text) as an owned string; NULL on failure. */
static char *usage_report(telemetry_client_t *client, const char *options) {
    char *json = NULL;
    size_t len = 0;
    EXPECT_OK(telemetry_usage_report(client, options, options ? strlen(options) : 0, &json, &len),
              options ? options : "report (defaults)");
    CHECK(json != NULL && strlen(json) == len, "report length %zu", len);
    return json;
}

static char *timing_snapshot(telemetry_timing_t *timing) {
    char *json = NULL;
    EXPECT_OK(telemetry_timing_snapshot(timing, &json, NULL), "snapshot");
    return json;
}

static void test_usage_declaration_errors(void) {
    telemetry_client_t *client = new_client(OFF);
    telemetry_timing_family_t *const sentinel = (telemetry_timing_family_t *)(uintptr_t)0x1;
    telemetry_timing_family_t *family = sentinel;
    const char *ok = "{\"name\":\"ok\"}";
    expect_code(telemetry_timing_family_new(NULL, ok, strlen(ok), &family),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "timing_family_new: NULL client");
    expect_code(telemetry_timing_family_new(client, NULL, 3, &family),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "timing_family_new: NULL declaration");
    expect_code(telemetry_timing_family_new(client, ok, strlen(ok), NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "timing_family_new: NULL out");
    expect_code(telemetry_timing_family_new(client, "{\"name\":\"\xff\"}", 12, &family),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "timing_family_new: invalid UTF-8");
    expect_code(telemetry_timing_family_new(client, "{\"name\":", 8, &family),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "timing_family_new: truncated");
    expect_code(telemetry_timing_family_new(client, ok, SIZE_MAX, &family),
                TELEMETRY_ERROR_CODE_TOO_LARGE, "timing_family_new: SIZE_MAX length");
    const char *refused[] = {
        "{\"name\":\"x\",\"colour\":1}",                              /* unknown key */
        "{\"help\":\"no name\"}",                                       /* no name */
        "{\"name\":\"Bad-Name\"}",                                      /* not a-z 0-9 _ */
        "{\"name\":\"x\",\"labels\":[[\"a\",\"secret\"]]}",            /* unknown kind */
        "{\"name\":\"x\",\"labels\":[[\"a\",\"safe\"],[\"a\",\"safe\"]]}", /* twice */
        "{\"name\":\"x\",\"labels\":[\"a\"]}",                          /* not [name, kind] */
        "{\"name\":\"x\",\"bounds_millis\":[10,5]}",                    /* not increasing */
        "{\"name\":\"x\",\"bounds_millis\":[0]}",                       /* not positive */
        "{\"name\":\"x\",\"bounds_millis\":[-1]}",                      /* not a duration */
        "{\"name\":\"x\",\"bounds_millis\":[]}",                        /* none */
        "{\"name\":\"x\",\"bounds_millis\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}",
        "{\"name\":\"x\",\"help\":\"a\\u0000b\"}",                      /* NUL in the help */
        "[\"x\"]",                                                      /* not an object */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        expect_code(telemetry_timing_family_new(client, refused[i], strlen(refused[i]), &family),
                    TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, refused[i]);
    }
    CHECK(family == sentinel, "out_family written on failure");

    /* The same declaration again is the same family; different labels or bounds are not. */
    const char *decl = "{\"name\":\"again\",\"labels\":[[\"a\",\"safe\"]],\"bounds_millis\":[1,2]}";
    telemetry_timing_family_t *first = timing_family(client, decl);
    telemetry_timing_family_t *second = timing_family(client, decl);
    const char *other = "{\"name\":\"again\",\"labels\":[[\"a\",\"safe\"]],\"bounds_millis\":[1,3]}";
    expect_code(telemetry_timing_family_new(client, other, strlen(other), &family),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "redeclared with other bounds");
    telemetry_timing_t *a = timing_with(first, "[\"x\"]");
    telemetry_timing_t *b = timing_with(second, "[\"x\"]");
    EXPECT_OK(telemetry_timing_record(a, 1000), "record through the first");
    char *snap = timing_snapshot(b);
    CHECK(snap && json_number(snap, "count") == 1, "one family, one cell: %s", snap ? snap : "");
    telemetry_string_free(snap);

    /* Counters: the same checks, and bounds are for timings. */
    telemetry_counter_family_t *const csentinel = (telemetry_counter_family_t *)(uintptr_t)0x1;
    telemetry_counter_family_t *counters = csentinel;
    const char *with_bounds = "{\"name\":\"c\",\"bounds_millis\":[1]}";
    expect_code(telemetry_counter_family_new(client, with_bounds, strlen(with_bounds), &counters),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "counter with bounds");
    expect_code(telemetry_counter_family_new(client, decl, strlen(decl), &counters),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "counter named like a timing");
    expect_code(telemetry_counter_family_new(NULL, ok, strlen(ok), &counters),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "counter_family_new: NULL client");
    expect_code(telemetry_counter_family_new(client, "{", 1, &counters),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "counter_family_new: truncated");
    expect_code(telemetry_counter_family_new(client, ok, strlen(ok), NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "counter_family_new: NULL out");
    CHECK(counters == csentinel, "out_family written on failure");

    telemetry_timing_free(a);
    telemetry_timing_free(b);
    telemetry_timing_family_free(first);
    telemetry_timing_family_free(second);
    telemetry_timing_family_free(NULL);
    telemetry_timing_free(NULL);
    telemetry_counter_family_free(NULL);
    telemetry_counter_free(NULL);
    telemetry_usage_server_free(NULL);
    telemetry_client_free(client);
}

static void test_usage_label_sets_and_recording(void) {
    telemetry_client_t *client = new_client(OFF);
    telemetry_timing_family_t *rest = timing_family(
        client,
        "{\"name\":\"rest\",\"help\":\"REST requests\",\"labels\":[[\"route\",\"safe\"],"
        "[\"status\",\"safe\"]],\"bounds_millis\":[1,5,0.5e2],\"max_keys\":2}");
    telemetry_timing_t *const sentinel = (telemetry_timing_t *)(uintptr_t)0x1;
    telemetry_timing_t *timing = sentinel;
    expect_code(telemetry_timing_family_with(rest, "[\"GET /a\"]", 10, &timing),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "with: one value for two labels");
    expect_code(telemetry_timing_family_with(rest, NULL, 0, &timing),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "with: no labels for two");
    expect_code(telemetry_timing_family_with(rest, "{\"route\":\"a\"}", 13, &timing),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "with: not an array");
    expect_code(telemetry_timing_family_with(rest, "[\"a\",2]", 7, &timing),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "with: not strings");
    expect_code(telemetry_timing_family_with(rest, "[\"a\",", 5, &timing),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "with: truncated");
    expect_code(telemetry_timing_family_with(rest, "[\"\xc3\x28\",\"b\"]", 9, &timing),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "with: invalid UTF-8");
    expect_code(telemetry_timing_family_with(rest, "[\"a\\u0000\",\"b\"]", 15, &timing),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "with: NUL in a value");
    expect_code(telemetry_timing_family_with(rest, NULL, 4, &timing),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "with: NULL labels with a length");
    expect_code(telemetry_timing_family_with(NULL, NULL, 0, &timing),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "with: NULL family");
    expect_code(telemetry_timing_family_with(rest, "[\"a\",\"b\"]", 9, NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "with: NULL out");
    CHECK(timing == sentinel, "out_timing written on failure");

    telemetry_timing_t *get = timing_with(rest, "[\"GET /a\",\"200\"]");
    EXPECT_OK(telemetry_timing_record(get, 500000), "record 0.5 ms");          /* le 1 ms */
    EXPECT_OK(telemetry_timing_record_at(get, 5000000, 1767225600), "record_at"); /* le 5 ms */
    EXPECT_OK(telemetry_timing_record_at(get, 60000000000ull, 1767225601), "record_at 60 s");
    EXPECT_OK(telemetry_timing_record_failure(get), "record_failure");
    EXPECT_OK(telemetry_timing_record_failure_at(get, 1767225599), "record_failure_at");
    char *snap = timing_snapshot(get);
    if (snap) {
        CHECK(json_number(snap, "count") == 3, "count in %s", snap);
        CHECK(json_number(snap, "fail_count") == 2, "fail_count in %s", snap);
        CHECK(json_number(snap, "min_nanos") == 500000, "min in %s", snap);
        CHECK(json_number(snap, "max_nanos") == 60000000000ll, "max in %s", snap);
        CHECK(json_number(snap, "total_nanos") == 60005500000ll, "total in %s", snap);
        CHECK(strstr(snap, "\"cumulative\":[1,2,2]") != NULL, "cumulative in %s", snap);
        /* record and record_failure end now, later than 2026: the latest second wins. */
        CHECK(json_number(snap, "last_second") > 1767225601ll, "last_second in %s", snap);
    }
    telemetry_string_free(snap);

    /* By labels, without a handle. */
    const char *put = "[\"PUT /b\",\"500\"]";
    EXPECT_OK(telemetry_timing_family_record(rest, put, strlen(put), 2000000), "family_record");
    EXPECT_OK(telemetry_timing_family_record_failure(rest, put, strlen(put)),
              "family_record_failure");
    expect_code(telemetry_timing_family_record(rest, "[\"x\"]", 5, 1),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "family_record: wrong count");
    expect_code(telemetry_timing_family_record(NULL, put, strlen(put), 1),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "family_record: NULL family");
    expect_code(telemetry_timing_family_record_failure(rest, "[", 1),
                TELEMETRY_ERROR_CODE_INVALID_JSON, "family_record_failure: truncated");
    telemetry_timing_t *put_timing = timing_with(rest, put);
    snap = timing_snapshot(put_timing);
    CHECK(snap && json_number(snap, "count") == 1 && json_number(snap, "fail_count") == 1,
          "by labels: %s", snap ? snap : "");
    telemetry_string_free(snap);

    /* max_keys 2: a third label set records into the overflow key. */
    const char *third = "[\"GET /c\",\"200\"]";
    EXPECT_OK(telemetry_timing_family_record(rest, third, strlen(third), 1000), "third set");
    char *text = NULL;
    EXPECT_OK(telemetry_usage_prometheus(client, false, &text, NULL), "prometheus");
    if (text) {
        CHECK(strstr(text, "# HELP ctest_rest_seconds REST requests\n") != NULL, "help: %s", text);
        CHECK(strstr(text, "ctest_rest_seconds_count{route=\"GET /a\",status=\"200\"} 3\n") != NULL,
              "count: %s", text);
        CHECK(strstr(text, "ctest_rest_seconds_bucket{route=\"GET /a\",status=\"200\",le=\"0.05\"} 2\n") !=
                  NULL,
              "fractional bound 0.5e2 ms: %s", text);
        CHECK(strstr(text, "ctest_rest_failures_total{route=\"GET /a\",status=\"200\"} 2\n") != NULL,
              "failures: %s", text);
        CHECK(strstr(text, "route=\"__other__\",status=\"__other__\"} 1\n") != NULL,
              "overflow key: %s", text);
    }
    telemetry_string_free(text);

    expect_code(telemetry_timing_record(NULL, 1), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "record: NULL timing");
    expect_code(telemetry_timing_record_failure(NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "record_failure: NULL timing");
    expect_code(telemetry_timing_record_at(NULL, 1, 1), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "record_at: NULL timing");
    expect_code(telemetry_timing_record_failure_at(NULL, 1), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "record_failure_at: NULL timing");
    char *const ssentinel = (char *)(uintptr_t)0x1;
    char *out = ssentinel;
    expect_code(telemetry_timing_snapshot(NULL, &out, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "snapshot: NULL timing");
    expect_code(telemetry_timing_snapshot(get, NULL, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "snapshot: NULL out");
    expect_code(telemetry_usage_prometheus(NULL, false, &out, NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "prometheus: NULL client");
    expect_code(telemetry_usage_prometheus(client, false, NULL, NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "prometheus: NULL out");
    CHECK(out == ssentinel, "out written on failure");

    /* The family handle may go first: its timings stay valid. */
    telemetry_timing_family_free(rest);
    EXPECT_OK(telemetry_timing_record(get, 1), "record after the family was freed");
    telemetry_timing_free(get);
    telemetry_timing_free(put_timing);
    telemetry_client_free(client);
}

/* Records a success into a cell view the way telemetry_timing_cell_t says a foreign recorder
 * does, with the compiler's atomics. */
static void cell_record(const telemetry_timing_cell_t *cell, uint64_t n, uint64_t second) {
    size_t i = 0;
    while (i < cell->bounds_len && n > cell->bounds[i]) i++;
    __atomic_fetch_add(&cell->words[TELEMETRY_TIMING_CELL_TOTAL_NANOS], n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&cell->words[TELEMETRY_TIMING_CELL_BUCKETS + i], 1, __ATOMIC_RELAXED);
    uint64_t *min = &cell->words[TELEMETRY_TIMING_CELL_MIN_NANOS];
    uint64_t seen = __atomic_load_n(min, __ATOMIC_RELAXED);
    while (n < seen && !__atomic_compare_exchange_n(min, &seen, n, true, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
    }
    uint64_t *max = &cell->words[TELEMETRY_TIMING_CELL_MAX_NANOS];
    seen = __atomic_load_n(max, __ATOMIC_RELAXED);
    while (n > seen && !__atomic_compare_exchange_n(max, &seen, n, true, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
    }
    uint64_t *last = &cell->words[TELEMETRY_TIMING_CELL_LAST_SECOND];
    seen = __atomic_load_n(last, __ATOMIC_RELAXED);
    while (second > seen && !__atomic_compare_exchange_n(last, &seen, second, true,
                                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void test_usage_cell_views(void) {
    telemetry_client_t *client = new_client(OFF);
    telemetry_timing_family_t *jobs =
        timing_family(client, "{\"name\":\"jobs\",\"bounds_millis\":[10,100,1000]}");
    telemetry_timing_t *timing = timing_with(jobs, NULL);
    telemetry_timing_cell_t cell = {(uint64_t *)(uintptr_t)0x1, NULL, 77};
    expect_code(telemetry_timing_cell(NULL, &cell), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "cell: NULL timing");
    expect_code(telemetry_timing_cell(timing, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "cell: NULL out");
    CHECK(cell.words == (uint64_t *)(uintptr_t)0x1 && cell.bounds_len == 77,
          "out_cell written on failure");
    EXPECT_OK(telemetry_timing_cell(timing, &cell), "cell");
    CHECK(((uintptr_t)cell.words % 64) == 0, "the cell is not 64-byte aligned: %p",
          (void *)cell.words);
    CHECK(cell.bounds_len == 3 && cell.bounds[0] == 10000000u && cell.bounds[2] == 1000000000u,
          "bounds %zu", cell.bounds_len);
    CHECK(cell.words[TELEMETRY_TIMING_CELL_MIN_NANOS] == UINT64_MAX, "min starts at UINT64_MAX");
    /* The C side and the core record into the same cell; the core reads both. */
    cell_record(&cell, 10000000u, 1767225600);  /* on the first bound */
    cell_record(&cell, 2500000000u, 1767225650); /* past the last */
    __atomic_fetch_add(&cell.words[TELEMETRY_TIMING_CELL_FAIL], 1, __ATOMIC_RELAXED);
    EXPECT_OK(telemetry_timing_record_at(timing, 9999000, 1767225700), "core record_at");
    char *snap = timing_snapshot(timing);
    if (snap) {
        CHECK(json_number(snap, "count") == 3, "count %s", snap);
        CHECK(json_number(snap, "fail_count") == 1, "fail_count %s", snap);
        CHECK(json_number(snap, "min_nanos") == 9999000, "min %s", snap);
        CHECK(json_number(snap, "max_nanos") == 2500000000ll, "max %s", snap);
        CHECK(json_number(snap, "total_nanos") == 2519999000ll, "total %s", snap);
        CHECK(json_number(snap, "last_second") == 1767225700ll, "last %s", snap);
        CHECK(strstr(snap, "\"cumulative\":[2,2,2]") != NULL, "cumulative %s", snap);
    }
    telemetry_string_free(snap);

    telemetry_counter_family_t *runs = NULL;
    const char *decl = "{\"name\":\"runs\",\"labels\":[[\"queue\",\"hashed\"]]}";
    EXPECT_OK(telemetry_counter_family_new(client, decl, strlen(decl), &runs), "counter family");
    telemetry_counter_t *const csentinel = (telemetry_counter_t *)(uintptr_t)0x1;
    telemetry_counter_t *counter = csentinel;
    expect_code(telemetry_counter_family_with(runs, NULL, 0, &counter),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "counter with: no labels for one");
    expect_code(telemetry_counter_family_with(NULL, "[\"q\"]", 5, &counter),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "counter with: NULL family");
    expect_code(telemetry_counter_family_with(runs, "[\"q\"]", 5, NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "counter with: NULL out");
    CHECK(counter == csentinel, "out_counter written on failure");
    EXPECT_OK(telemetry_counter_family_with(runs, "[\"q\"]", 5, &counter), "counter with");
    EXPECT_OK(telemetry_counter_add(counter, 40), "counter add");
    EXPECT_OK(telemetry_counter_family_add(runs, "[\"q\"]", 5, 1), "family add");
    expect_code(telemetry_counter_family_add(runs, "[]", 2, 1), TELEMETRY_ERROR_CODE_INVALID_ARGUMENT,
                "family add: wrong count");
    uint64_t *word = NULL;
    EXPECT_OK(telemetry_counter_cell(counter, &word), "counter cell");
    if (word) __atomic_fetch_add(word, 1, __ATOMIC_RELAXED);
    uint64_t value = 0;
    EXPECT_OK(telemetry_counter_value(counter, &value), "counter value");
    CHECK(value == 42, "counter %llu", (unsigned long long)value);
    value = 99;
    expect_code(telemetry_counter_value(NULL, &value), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "counter value: NULL counter");
    expect_code(telemetry_counter_value(counter, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "counter value: NULL out");
    expect_code(telemetry_counter_add(NULL, 1), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "counter add: NULL");
    expect_code(telemetry_counter_cell(NULL, &word), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "counter cell: NULL");
    expect_code(telemetry_counter_cell(counter, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "counter cell: NULL out");
    CHECK(value == 99, "out_value written on failure");
    char *report = usage_report(client, "{\"details_level\":2}");
    if (report) {
        CHECK(strstr(report, "\"runs\":{\"by_labels\":[{\"labels\":{\"queue\":\"q\"},\"value\":42}],"
                             "\"total\":42}") != NULL,
              "counter in report: %s", report);
    }
    telemetry_string_free(report);
    telemetry_counter_free(counter);
    telemetry_counter_family_free(runs);
    telemetry_timing_free(timing);
    telemetry_timing_family_free(jobs);
    telemetry_client_free(client);
}

static void test_usage_sections_and_report(void) {
    telemetry_client_t *client = new_client(OFF);
    const char *section =
        "{\"value\":{\"number\":2,\"names\":[\"my_collection\"],\"config\":{\"distance\":\"Dot\"}},"
        "\"kinds\":{\"number\":\"exact\",\"config\":\"safe\"},\"level\":2}";
    EXPECT_OK(telemetry_usage_set_section(client, "collections", 11, section, strlen(section)),
              "set_section");
    const char *deep = "{\"value\":{\"peers\":1},\"level\":9}";
    EXPECT_OK(telemetry_usage_set_section(client, "cluster", 7, deep, strlen(deep)),
              "set_section level 9 (means 4)");
    const char *minimal = "{\"value\":[1,2]}";
    EXPECT_OK(telemetry_usage_set_section(client, "extra", 5, minimal, strlen(minimal)),
              "set_section with defaults");
    struct {
        const char *name;
        const char *json;
        telemetry_error_code_t code;
    } refused[] = {
        {"app", minimal, TELEMETRY_ERROR_CODE_INVALID_ARGUMENT},       /* the core's */
        {"operations", minimal, TELEMETRY_ERROR_CODE_INVALID_ARGUMENT}, /* the core's */
        {"Bad Name", minimal, TELEMETRY_ERROR_CODE_INVALID_ARGUMENT},
        {"s", "{\"kinds\":{}}", TELEMETRY_ERROR_CODE_INVALID_ARGUMENT},            /* no value */
        {"s", "{\"value\":null}", TELEMETRY_ERROR_CODE_INVALID_ARGUMENT},          /* null */
        {"s", "{\"value\":1,\"level\":-1}", TELEMETRY_ERROR_CODE_INVALID_ARGUMENT}, /* negative */
        {"s", "{\"value\":1,\"kinds\":{\"a\":\"secret\"}}", TELEMETRY_ERROR_CODE_INVALID_ARGUMENT},
        {"s", "{\"value\":1,\"colour\":1}", TELEMETRY_ERROR_CODE_INVALID_ARGUMENT},
        {"s", "{\"value\":", TELEMETRY_ERROR_CODE_INVALID_JSON},
        {"s", "{\"value\":\"\xff\"}", TELEMETRY_ERROR_CODE_INVALID_UTF8},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        expect_code(telemetry_usage_set_section(client, refused[i].name, strlen(refused[i].name),
                                                refused[i].json, strlen(refused[i].json)),
                    refused[i].code, refused[i].json);
    }
    expect_code(telemetry_usage_set_section(NULL, "s", 1, minimal, strlen(minimal)),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "set_section: NULL client");
    expect_code(telemetry_usage_set_section(client, NULL, 1, minimal, strlen(minimal)),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "set_section: NULL name");
    expect_code(telemetry_usage_set_section(client, "\xff", 1, minimal, strlen(minimal)),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "set_section: invalid UTF-8 name");
    expect_code(telemetry_usage_set_section(client, "s", 1, NULL, 0),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "set_section: NULL section");

    const char *app = "{\"value\":{\"mode\":\"distributed\",\"features\":3},"
                      "\"kinds\":{\"mode\":\"safe\",\"features\":\"exact\"}}";
    EXPECT_OK(telemetry_usage_set_app_fields(client, app, strlen(app)), "set_app_fields");
    const char *app_refused[] = {"{\"value\":[1]}", "{\"value\":{},\"level\":1}", "{}",
                                 "{\"value\":{},\"kinds\":{\"a\":1}}"};
    for (size_t i = 0; i < sizeof app_refused / sizeof app_refused[0]; i++) {
        expect_code(telemetry_usage_set_app_fields(client, app_refused[i], strlen(app_refused[i])),
                    TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, app_refused[i]);
    }
    expect_code(telemetry_usage_set_app_fields(client, "{", 1), TELEMETRY_ERROR_CODE_INVALID_JSON,
                "set_app_fields: truncated");
    expect_code(telemetry_usage_set_app_fields(NULL, app, strlen(app)),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "set_app_fields: NULL client");
    EXPECT_OK(telemetry_usage_set_data_dir(client, "/tmp", 4), "set_data_dir");
    expect_code(telemetry_usage_set_data_dir(client, NULL, 4), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "set_data_dir: NULL");
    expect_code(telemetry_usage_set_data_dir(client, "\xff", 1), TELEMETRY_ERROR_CODE_INVALID_UTF8,
                "set_data_dir: invalid UTF-8");

    char *report = usage_report(client, NULL); /* level 0: no sections, no system */
    if (report) {
        CHECK(strstr(report, "\"collections\"") == NULL, "a section at level 0: %s", report);
        CHECK(strstr(report, "\"system\"") == NULL, "system at level 0: %s", report);
        CHECK(strstr(report, "\"mode\":\"distributed\"") != NULL, "app fields: %s", report);
        CHECK(strstr(report, "\"id\":\"0d7b2a8e-5c1f-4f4e-9a51-2f8c3b6d7e90\"") != NULL, "id: %s",
              report);
    }
    telemetry_string_free(report);
    report = usage_report(client, "{\"details_level\":2,\"anonymize\":true}");
    if (report) {
        CHECK(strstr(report, "\"number\":2") != NULL, "exact kept: %s", report);
        CHECK(strstr(report, "\"distance\":\"Dot\"") != NULL, "safe kept: %s", report);
        /* anonymize.json's hash of my_collection under this secret. */
        CHECK(strstr(report, "\"names\":[\"80ded56ea35a1d2c\"]") != NULL, "hashed: %s", report);
        CHECK(strstr(report, "my_collection") == NULL, "a name in clear: %s", report);
        CHECK(strstr(report, "\"cluster\"") == NULL, "a level-4 section at 2: %s", report);
        CHECK(strstr(report, "\"extra\":[1,2]") != NULL, "default level 2: %s", report);
        CHECK(strstr(report, "\"system\":{") != NULL, "system at level 2: %s", report);
    }
    telemetry_string_free(report);
    report = usage_report(client, "{\"details_level\":99}");
    CHECK(report && strstr(report, "\"cluster\":{\"peers\":1}") != NULL, "level 99 means 4: %s",
          report ? report : "");
    telemetry_string_free(report);

    bool removed = false;
    EXPECT_OK(telemetry_usage_remove_section(client, "cluster", 7, &removed), "remove_section");
    CHECK(removed, "cluster was there");
    EXPECT_OK(telemetry_usage_remove_section(client, "cluster", 7, &removed), "remove again");
    CHECK(!removed, "cluster removed twice");
    EXPECT_OK(telemetry_usage_remove_section(client, "extra", 5, NULL), "remove, NULL out");
    expect_code(telemetry_usage_remove_section(NULL, "x", 1, &removed),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "remove_section: NULL client");
    expect_code(telemetry_usage_remove_section(client, NULL, 1, &removed),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "remove_section: NULL name");
    report = usage_report(client, "{\"details_level\":4}");
    CHECK(report && strstr(report, "\"cluster\"") == NULL && strstr(report, "\"extra\"") == NULL,
          "removed sections still shown: %s", report ? report : "");
    telemetry_string_free(report);

    char *const sentinel = (char *)(uintptr_t)0x1;
    char *out = sentinel;
    size_t len = 5;
    const char *bad_options[] = {"{\"details_level\":-1}", "{\"details_level\":\"high\"}",
                                 "{\"level\":1}", "{\"anonymize\":1}", "[]"};
    for (size_t i = 0; i < sizeof bad_options / sizeof bad_options[0]; i++) {
        expect_code(
            telemetry_usage_report(client, bad_options[i], strlen(bad_options[i]), &out, &len),
            TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, bad_options[i]);
    }
    expect_code(telemetry_usage_report(client, "{", 1, &out, &len), TELEMETRY_ERROR_CODE_INVALID_JSON,
                "report: truncated options");
    expect_code(telemetry_usage_report(client, "{\"\xff\":1}", 7, &out, &len),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "report: invalid UTF-8");
    expect_code(telemetry_usage_report(NULL, NULL, 0, &out, &len), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "report: NULL client");
    expect_code(telemetry_usage_report(client, NULL, 0, NULL, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "report: NULL out");
    CHECK(out == sentinel && len == 5, "out-parameters written on failure");
    telemetry_client_free(client);
}

/* One HTTP exchange with a loopback server; returns the whole answer (owned) or NULL. */
static char *http_get(int port, const char *target) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    char request[256];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
    if (write(fd, request, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && len + 1 < cap && (got = read(fd, buf + len, cap - len - 1)) > 0) len += (size_t)got;
    close(fd);
    if (buf) buf[len] = '\0';
    return buf;
}

static void test_usage_endpoints_and_server(void) {
    telemetry_client_t *client = new_client(OFF);
    telemetry_timing_family_t *q = timing_family(client, "{\"name\":\"query\"}");
    telemetry_timing_t *t = timing_with(q, NULL);
    EXPECT_OK(telemetry_timing_record(t, 3000000), "record");

    struct {
        const char *path, *query;
        unsigned status;
        const char *type, *body;
    } cases[] = {
        {"/telemetry", "details_level=1&anonymize=true", 200, "application/json", "\"count\":1"},
        {"/telemetry/", NULL, 200, "application/json", "\"query\":{\"avg_duration_micros\""},
        {"/metrics", "", 200, "text/plain; version=0.0.4; charset=utf-8",
         "ctest_query_seconds_count 1\n"},
        {"/telemetry", "details_level=high", 400, "application/json", "details_level"},
        {"/telemetry", "details_level=-1", 400, "application/json", "details_level"},
        {"/telemetry", "anonymize=maybe", 400, "application/json", "anonymize"},
        {"/telemetry", "colour=red", 400, "application/json", "colour"},
        {"/telemetry", "details_level=1&details_level=2", 400, "application/json", "twice"},
        {"/metrics", "details_level=1", 400, "application/json", "details_level"},
        {"/other", "", 404, "application/json", "not found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t status = 0;
        char *type = NULL, *body = NULL;
        size_t len = 0;
        EXPECT_OK(telemetry_usage_handle(client, cases[i].path, strlen(cases[i].path), cases[i].query,
                                         cases[i].query ? strlen(cases[i].query) : 0, &status,
                                         &type, &body, &len),
                  cases[i].path);
        CHECK(status == cases[i].status, "%s?%s: status %u", cases[i].path,
              cases[i].query ? cases[i].query : "", status);
        CHECK(type && strcmp(type, cases[i].type) == 0, "%s: content type %s", cases[i].path,
              type ? type : "(null)");
        CHECK(body && strlen(body) == len && strstr(body, cases[i].body) != NULL, "%s?%s: body %s",
              cases[i].path, cases[i].query ? cases[i].query : "", body ? body : "(null)");
        telemetry_string_free(type);
        telemetry_string_free(body);
    }
    uint16_t status = 7;
    char *const sentinel = (char *)(uintptr_t)0x1;
    char *type = sentinel, *body = sentinel;
    size_t len = 3;
    expect_code(telemetry_usage_handle(NULL, "/metrics", 8, NULL, 0, &status, &type, &body, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "handle: NULL client");
    expect_code(telemetry_usage_handle(client, NULL, 8, NULL, 0, &status, &type, &body, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "handle: NULL path");
    expect_code(telemetry_usage_handle(client, "/metrics", 8, NULL, 0, NULL, &type, &body, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "handle: NULL out_status");
    expect_code(telemetry_usage_handle(client, "/metrics", 8, NULL, 0, &status, NULL, &body, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "handle: NULL out_content_type");
    expect_code(telemetry_usage_handle(client, "/metrics", 8, NULL, 0, &status, &type, NULL, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "handle: NULL out_body");
    expect_code(telemetry_usage_handle(client, "/metrics", 8, "a=\xff", 3, &status, &type, &body,
                                       &len),
                TELEMETRY_ERROR_CODE_INVALID_UTF8, "handle: invalid UTF-8 query");
    expect_code(telemetry_usage_handle(client, "/metrics", 8, NULL, 9, &status, &type, &body, &len),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "handle: NULL query with a length");
    CHECK(status == 7 && type == sentinel && body == sentinel && len == 3,
          "out-parameters written on failure");

    /* The loopback server: never beyond loopback, a port in use is refused, then real GETs. */
    telemetry_usage_server_t *const ssentinel = (telemetry_usage_server_t *)(uintptr_t)0x1;
    telemetry_usage_server_t *server = ssentinel;
    const char *not_loopback[] = {"0.0.0.0:0", "192.0.2.1:9464", "example.com:80", "127.0.0.1",
                                  "nonsense"};
    for (size_t i = 0; i < sizeof not_loopback / sizeof not_loopback[0]; i++) {
        expect_code(telemetry_usage_serve(client, not_loopback[i], strlen(not_loopback[i]), &server),
                    TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, not_loopback[i]);
    }
    int taken = 0;
    int fd = bound_not_listening(&taken);
    char addr[64];
    int n = snprintf(addr, sizeof addr, "127.0.0.1:%d", taken);
    expect_code(telemetry_usage_serve(client, addr, (size_t)n, &server),
                TELEMETRY_ERROR_CODE_INVALID_ARGUMENT, "serve on a port in use");
    close(fd);
    expect_code(telemetry_usage_serve(NULL, "127.0.0.1:0", 11, &server),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "serve: NULL client");
    expect_code(telemetry_usage_serve(client, "127.0.0.1:0", 11, NULL),
                TELEMETRY_ERROR_CODE_NULL_POINTER, "serve: NULL out");
    expect_code(telemetry_usage_serve(client, NULL, 11, &server), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "serve: NULL addr");
    CHECK(server == ssentinel, "out_server written on failure");

    server = NULL;
    EXPECT_OK(telemetry_usage_serve(client, "127.0.0.1:0", 11, &server), "serve");
    char *url = NULL;
    EXPECT_OK(telemetry_usage_server_url(server, &url, &len), "server_url");
    int port = 0;
    CHECK(url && sscanf(url, "http://127.0.0.1:%d", &port) == 1 && port > 0, "url %s",
          url ? url : "(null)");
    telemetry_string_free(url);
    expect_code(telemetry_usage_server_url(NULL, &url, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "server_url: NULL server");
    expect_code(telemetry_usage_server_url(server, NULL, NULL), TELEMETRY_ERROR_CODE_NULL_POINTER,
                "server_url: NULL out");
    char *answer = http_get(port, "/metrics");
    CHECK(answer && strncmp(answer, "HTTP/1.1 200", 12) == 0, "GET /metrics: %s",
          answer ? answer : "(no answer)");
    CHECK(answer && strstr(answer, "ctest_query_seconds_count 1\n") != NULL, "body: %s",
          answer ? answer : "");
    CHECK(answer && strstr(answer, "text/plain; version=0.0.4") != NULL, "type: %s",
          answer ? answer : "");
    free(answer);
    answer = http_get(port, "/telemetry?details_level=x");
    CHECK(answer && strncmp(answer, "HTTP/1.1 400", 12) == 0, "GET bad query: %s",
          answer ? answer : "(no answer)");
    free(answer);
    telemetry_usage_server_free(server);
    answer = http_get(port, "/metrics");
    CHECK(answer == NULL || answer[0] == '\0', "answered after free: %s", answer);
    free(answer);

    telemetry_timing_free(t);
    telemetry_timing_family_free(q);
    telemetry_client_free(client);
}

#define USAGE_THREADS 8
#define USAGE_PER_THREAD 10000

struct usage_worker {
    telemetry_timing_t *timing;
    telemetry_timing_cell_t cell;
    int id;
    int errors;
};

static void *record_many(void *arg) {
    struct usage_worker *w = arg;
    for (int i = 0; i < USAGE_PER_THREAD; i++) {
        if (w->id % 2 == 0) {
            /* Through the library: 0.5 ms (first bucket) or a failure. */
            telemetry_error_t *err = i % 4 == 3 ? telemetry_timing_record_failure(w->timing)
                                                : telemetry_timing_record(w->timing, 500000);
            if (err) w->errors++;
            telemetry_error_free(err);
        } else if (i % 4 == 3) {
            __atomic_fetch_add(&w->cell.words[TELEMETRY_TIMING_CELL_FAIL], 1, __ATOMIC_RELAXED);
        } else {
            /* Through the cell view: 7 ms (third bucket). */
            cell_record(&w->cell, 7000000, 1767225600);
        }
    }
    return NULL;
}

static void test_usage_threads(void) {
    telemetry_client_t *client = new_client(MEMORY);
    telemetry_timing_family_t *ops = timing_family(client, "{\"name\":\"ops\"}");
    pthread_t threads[USAGE_THREADS];
    struct usage_worker workers[USAGE_THREADS];
    for (int i = 0; i < USAGE_THREADS; i++) {
        workers[i] = (struct usage_worker){timing_with(ops, NULL), {0}, i, 0};
        EXPECT_OK(telemetry_timing_cell(workers[i].timing, &workers[i].cell), "cell");
        CHECK(pthread_create(&threads[i], NULL, record_many, &workers[i]) == 0, "pthread_create");
    }
    int errors = 0;
    for (int i = 0; i < USAGE_THREADS; i++) {
        pthread_join(threads[i], NULL);
        errors += workers[i].errors;
    }
    CHECK(errors == 0, "%d recordings failed", errors);
    char *report = usage_report(client, "{\"details_level\":3}");
    if (report) {
        const long long per = USAGE_PER_THREAD / 4, half = USAGE_THREADS / 2;
        CHECK(json_number(report, "count") == half * per * 3 * 2, "count in %s", report);
        CHECK(json_number(report, "fail_count") == USAGE_THREADS * per, "fail_count in %s", report);
        char want[128];
        snprintf(want, sizeof want, "\"cumulative_counts\":[%lld,%lld,%lld,", half * per * 3,
                 half * per * 3, half * per * 6);
        CHECK(strstr(report, want) != NULL, "%s in %s", want, report);
    }
    telemetry_string_free(report);
    for (int i = 0; i < USAGE_THREADS; i++) telemetry_timing_free(workers[i].timing);
    telemetry_timing_family_free(ops);
    EXPECT_OK(telemetry_client_shutdown(client, slow_ms(10000)), "shutdown");
    /* Enabled: the report went home at shutdown, through the memory sink. */
    char *json = NULL;
    EXPECT_OK(telemetry_client_memory_events(client, &json, NULL), "memory_events");
    CHECK(json && count_occurrences(json, "\"event\":\"usage_report\"") == 1, "usage report sent: %s",
          json ? json : "");
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

/* ---- Error reports ------------------------------------------------------------------- */

#define UNTOUCHED ((telemetry_reported_t)99)

/* A memory client whose error reports have the given crash options (JSON object body). */
static telemetry_client_t *crash_client(const char *crash) {
    char cfg[512];
    char slow_deadline[64];
    if (crash == NULL && slowdown > 1) {
        /* The default deadline (1 s) for a crash's delivery, stretched like the others. */
        snprintf(slow_deadline, sizeof slow_deadline, "\"deadline_ms\":%u", slow_ms(1000));
        crash = slow_deadline;
    }
    snprintf(cfg, sizeof cfg,
             "{\"product\":\"ctest\",\"version\":\"2.0\",\"sink\":\"memory\",\"environment\":{},"
             "\"shutdown_timeout_ms\":60000,\"usage_reports\":false%s%s%s}",
             crash ? ",\"crash\":{" : "", crash ? crash : "", crash ? "}" : "");
    return new_client(cfg);
}

static telemetry_reported_t capture_error(telemetry_client_t *client, const char *report) {
    telemetry_reported_t out = UNTOUCHED;
    EXPECT_OK(telemetry_client_capture_error(client, report, strlen(report), &out), report);
    return out;
}

static telemetry_reported_t report_crash(telemetry_client_t *client, const char *report) {
    telemetry_reported_t out = UNTOUCHED;
    EXPECT_OK(telemetry_client_report_crash(client, report, strlen(report), &out), report);
    return out;
}

/* The delivered events, after a flush (owned). */
static char *delivered(telemetry_client_t *client) {
    EXPECT_OK(telemetry_client_flush(client, slow_ms(10000)), "flush");
    char *json = NULL;
    EXPECT_OK(telemetry_client_memory_events(client, &json, NULL), "memory_events");
    return json;
}

static double ms_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void test_error_report_errors(void) {
    /* The crash options are part of the configuration, checked like the rest of it. */
    telemetry_client_t *const csentinel = (telemetry_client_t *)(uintptr_t)0x1;
    telemetry_client_t *bad = csentinel;
    const char *bad_crash[] = {
        "{\"product\":\"x\",\"sink\":\"memory\",\"crash\":{\"deadline\":1}}",
        "{\"product\":\"x\",\"sink\":\"memory\",\"crash\":{\"deadline_ms\":\"1s\"}}",
        "{\"product\":\"x\",\"sink\":\"memory\",\"crash\":{\"per_hour\":-1}}",
        "{\"product\":\"x\",\"sink\":\"memory\",\"crash\":true}",
    };
    for (size_t i = 0; i < sizeof bad_crash / sizeof bad_crash[0]; i++) {
        expect_code(telemetry_client_new(bad_crash[i], strlen(bad_crash[i]), &bad),
                    TELEMETRY_ERROR_CODE_INVALID_CONFIG, bad_crash[i]);
    }
    CHECK(bad == csentinel, "out_client written on failure");

    telemetry_client_t *client = crash_client(NULL);
    telemetry_reported_t out = UNTOUCHED;
    typedef telemetry_error_t *(*report_fn)(const telemetry_client_t *, const char *, size_t,
                                           telemetry_reported_t *);
    report_fn fns[] = {telemetry_client_capture_error, telemetry_client_report_crash};
    for (size_t f = 0; f < 2; f++) {
        report_fn fn = fns[f];
        const char *ok = f == 0 ? "{\"type\":\"Handled\"}" : "{\"type\":\"Crash\"}";
        expect_code(fn(NULL, ok, strlen(ok), &out), TELEMETRY_ERROR_CODE_NULL_POINTER,
                    "report: NULL client");
        expect_code(fn(client, NULL, 3, &out), TELEMETRY_ERROR_CODE_NULL_POINTER,
                    "report: NULL report");
        expect_code(fn(client, "{\"type\":\"\xff\"}", 11, &out), TELEMETRY_ERROR_CODE_INVALID_UTF8,
                    "report: invalid UTF-8");
        expect_code(fn(client, "{\"type\":", 8, &out), TELEMETRY_ERROR_CODE_INVALID_JSON,
                    "report: truncated");
        expect_code(fn(client, "E", 1, &out), TELEMETRY_ERROR_CODE_INVALID_JSON, "report: not JSON");
        expect_code(fn(client, ok, SIZE_MAX, &out), TELEMETRY_ERROR_CODE_TOO_LARGE,
                    "report: SIZE_MAX length");
        const char *shapes[] = {
            "{}",
            "{\"type\":\"   \"}",
            "{\"type\":7}",
            "{\"type\":\"E\",\"frames\":[{\"file\":\"a.c\",\"line\":3}]}",
            "{\"type\":\"E\",\"frames\":[{\"function\":\"f\",\"line\":-3}]}",
            "{\"type\":\"E\",\"causes\":[{\"message\":\"no type\"}]}",
            "{\"type\":\"E\",\"handled\":\"yes\"}",
            "[\"E\"]",
        };
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            expect_code(fn(client, shapes[i], strlen(shapes[i]), &out),
                        TELEMETRY_ERROR_CODE_INVALID_EVENT, shapes[i]);
        }
        CHECK(out == UNTOUCHED, "out_reported written on failure: %d", (int)out);
        /* NULL out_reported is allowed: the caller does not want to know. */
        EXPECT_OK(fn(client, ok, strlen(ok), NULL), "report with NULL out_reported");
    }
    /* None of the refused reports went anywhere; the two accepted did. */
    char *json = delivered(client);
    CHECK(json && count_occurrences(json, "\"event\":\"$exception\"") == 2, "delivered: %s",
          json ? json : "(null)");
    telemetry_string_free(json);

    EXPECT_OK(telemetry_client_shutdown(client, slow_ms(10000)), "shutdown");
    expect_code(telemetry_client_capture_error(client, "{\"type\":\"Late\"}", 15, &out),
                TELEMETRY_ERROR_CODE_SHUT_DOWN, "capture_error after shutdown");
    expect_code(telemetry_client_report_crash(client, "{\"type\":\"Late\"}", 15, &out),
                TELEMETRY_ERROR_CODE_SHUT_DOWN, "report_crash after shutdown");
    CHECK(out == UNTOUCHED, "out_reported written after shutdown");
    telemetry_client_free(client);
}

static void test_error_reports_scrubbed_shaped_and_limited(void) {
    telemetry_client_t *client = crash_client(NULL);
    /* A handled error with a cause: private data in messages and paths, "handled": false
     * ignored (capture_error reports a handled error). */
    const char *handled =
        "{\"type\":\"SyncError\",\"message\":\"sync of /home/alice/notes.db for "
        "alice@example.com failed\",\"handled\":false,"
        "\"frames\":[{\"function\":\"main\",\"file\":\"/home/alice/src/app/main.c\",\"line\":12},"
        "{\"function\":\"sync_run\",\"file\":\"/home/alice/src/app/sync.c\",\"line\":88,"
        "\"column\":5,\"in_app\":true}],"
        "\"causes\":[{\"type\":\"ConnectError\",\"message\":\"connect to 10.1.2.3:5432 refused\"}]}";
    CHECK(capture_error(client, handled) == TELEMETRY_REPORTED_QUEUED, "a new handled error");
    /* The same error again within 60 s (another message, same type and frames): held back. */
    const char *again =
        "{\"type\":\"SyncError\",\"message\":\"sync of /srv/other.db failed\","
        "\"frames\":[{\"function\":\"main\",\"file\":\"main.c\",\"line\":40},"
        "{\"function\":\"sync_run\",\"file\":\"sync.c\",\"line\":90,\"in_app\":true}]}";
    CHECK(capture_error(client, again) == TELEMETRY_REPORTED_SUPPRESSED, "a repeat is suppressed");
    /* A crash, "handled": true ignored. The memory sink delivers at once: it waited for it. */
    const char *crash =
        "{\"type\":\"AssertionFailed\",\"message\":\"queue.c:77: len <= cap\",\"handled\":true,"
        "\"frames\":[{\"function\":\"queue_push\",\"file\":\"queue.c\",\"line\":77,\"in_app\":true}]}";
    CHECK(report_crash(client, crash) == TELEMETRY_REPORTED_DELIVERED, "the first crash");
    CHECK(report_crash(client, crash) == TELEMETRY_REPORTED_SUPPRESSED, "the same crash again");

    char *json = delivered(client);
    if (json) {
        CHECK(count_occurrences(json, "\"event\":\"$exception\"") == 2, "two reports: %s", json);
        CHECK(strstr(json, "/home/alice") == NULL, "a home path went out: %s", json);
        CHECK(strstr(json, "alice@example.com") == NULL, "an e-mail went out: %s", json);
        CHECK(strstr(json, "10.1.2.3") == NULL, "an IP went out: %s", json);
        CHECK(strstr(json, "notes.db") != NULL, "the file name was lost: %s", json);
        CHECK(strstr(json, "\"filename\":\"sync.c\"") != NULL, "frames lost their directories: %s",
              json);
        CHECK(strstr(json, "\"function\":\"sync_run\"") != NULL, "function names kept: %s", json);
        CHECK(strstr(json, "\"colno\":5") != NULL && strstr(json, "\"lineno\":88") != NULL,
              "lines and columns: %s", json);
        CHECK(strstr(json, "\"type\":\"ConnectError\"") != NULL, "the cause: %s", json);
        CHECK(strstr(json, "\"platform\":\"c\"") != NULL, "the platform is the runtime's: %s", json);
        CHECK(count_occurrences(json, "\"$exception_level\":\"error\"") == 1 &&
                  count_occurrences(json, "\"$exception_level\":\"fatal\"") == 1,
              "one handled, one fatal: %s", json);
        CHECK(count_occurrences(json, "\"$exception_handled\":true") == 1, "handled: %s", json);
        CHECK(count_occurrences(json, "\"$exception_fingerprint\":\"") == 2, "fingerprints: %s",
              json);
        /* The crash carries the count of the handled repeat held back before it. */
        CHECK(count_occurrences(json, "\"$exception_suppressed\":1") == 1, "suppressed told: %s",
              json);
    }
    telemetry_string_free(json);
    telemetry_client_free(client);

    /* Options from the configuration: no wait between repeats, 3 reports an hour. */
    client = crash_client("\"per_fingerprint_ms\":0,\"per_hour\":3");
    const char *e = "{\"type\":\"E\",\"frames\":[{\"function\":\"f\",\"in_app\":true}]}";
    CHECK(report_crash(client, e) == TELEMETRY_REPORTED_DELIVERED, "first crash");
    CHECK(report_crash(client, e) == TELEMETRY_REPORTED_QUEUED, "a repeat does not wait");
    CHECK(capture_error(client, e) == TELEMETRY_REPORTED_QUEUED, "third report of the hour");
    CHECK(capture_error(client, e) == TELEMETRY_REPORTED_SUPPRESSED, "the hourly limit");
    CHECK(report_crash(client, "{\"type\":\"Other\"}") == TELEMETRY_REPORTED_SUPPRESSED,
          "the hourly limit holds for every fingerprint");
    json = delivered(client);
    CHECK(json && count_occurrences(json, "\"event\":\"$exception\"") == 3, "three sent: %s",
          json ? json : "(null)");
    telemetry_string_free(json);
    telemetry_client_free(client);
}

static void test_error_reports_off(void) {
    const char *cfg =
        "{\"product\":\"ctest\",\"sink\":\"memory\",\"environment\":{\"DO_NOT_TRACK\":\"1\"},"
        "\"crash\":{\"deadline_ms\":5000}}";
    telemetry_client_t *client = new_client(cfg);
    /* Off: not even read (this is not JSON), nothing waits, nothing is counted. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK(capture_error(client, "{not json") == TELEMETRY_REPORTED_DISABLED, "capture_error off");
    CHECK(report_crash(client, "{not json") == TELEMETRY_REPORTED_DISABLED, "report_crash off");
    CHECK(ms_since(&start) < 100, "an opted-out crash waited %.0f ms", ms_since(&start));
    CHECK(stat_of(client, "captured") == 0, "an off client counted a report");
    char *json = delivered(client);
    CHECK(json && strcmp(json, "[]") == 0, "an off client delivered %s", json ? json : "(null)");
    telemetry_string_free(json);
    telemetry_client_free(client);
}

/* A loopback socket that listens and never accepts: a request to it never gets an answer. */
static int listening_never_answering(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 16) == 0 &&
              getsockname(fd, (struct sockaddr *)&addr, &alen) == 0,
          "cannot listen on loopback");
    *port = ntohs(addr.sin_port);
    return fd;
}

/* A crash against an endpoint that never answers waits its deadline, no longer: the
 * configured one, or the default second. */
static void test_crash_waits_at_most_its_deadline(void) {
    int port = 0;
    int fd = listening_never_answering(&port);
    struct {
        const char *crash;
        int request_ms;
        double at_least, below;
    } cases[] = {{",\"crash\":{\"deadline_ms\":300}", 500, 290, 490},
                 {"", 1300, 990, 1290}};
    for (size_t i = 0; i < 2; i++) {
        char cfg[512];
        /* The request gives up after the deadline (so the crash cannot have seen it fail) and
         * inside the shutdown deadline, so the worker ends cleanly and nothing is abandoned
         * (LeakSanitizer would report it). */
        snprintf(cfg, sizeof cfg,
                 "{\"product\":\"ctest\",\"endpoint\":\"http://127.0.0.1:%d\",\"api_key\":\"phc_c\","
                 "\"environment\":{},\"request_timeout_ms\":%d,\"max_retries\":0,"
                 "\"usage_reports\":false,%s%s}",
                 port, cases[i].request_ms, FIXED_IDENTITY, cases[i].crash);
        telemetry_client_t *client = new_client(cfg);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        telemetry_reported_t out = report_crash(client, "{\"type\":\"Stuck\"}");
        double waited = ms_since(&start);
        CHECK(out == TELEMETRY_REPORTED_NOT_DELIVERED, "a crash to a silent endpoint: %d", (int)out);
        double below = cases[i].at_least + (cases[i].below - cases[i].at_least) * slowdown;
        CHECK(waited >= cases[i].at_least && waited < below,
              "the crash waited %.0f ms, expected [%.0f, %.0f)", waited, cases[i].at_least, below);
        /* Only the first report of a fingerprint waits; a handled error never does (once:
         * it is a second request for the silent endpoint, which shutdown waits out). */
        clock_gettime(CLOCK_MONOTONIC, &start);
        CHECK(report_crash(client, "{\"type\":\"Stuck\"}") == TELEMETRY_REPORTED_SUPPRESSED,
              "the repeat");
        if (i == 0) {
            CHECK(capture_error(client, "{\"type\":\"Handled\"}") == TELEMETRY_REPORTED_QUEUED,
                  "a handled error meanwhile");
        }
        CHECK(ms_since(&start) < 100.0 * slowdown, "a repeat or a handled error waited %.0f ms",
              ms_since(&start));
        EXPECT_OK(telemetry_client_shutdown(client, 30000), "shutdown with a stuck request");
        telemetry_client_free(client);
    }
    close(fd);
}

/* 8 threads crash at once with one fingerprint, and report 100 handled errors each with
 * fingerprints of their own: one crash report, 20 reports in all (the hourly limit), every
 * call answered. */
#define CRASH_THREADS 8
#define CRASH_ERRORS 100

struct crash_worker {
    telemetry_client_t *client;
    int index;
    int sent, suppressed, other;
};

static void *crash_many(void *arg) {
    struct crash_worker *w = arg;
    for (int i = 0; i < CRASH_ERRORS; i++) {
        char report[128];
        int n = snprintf(report, sizeof report,
                         "{\"type\":\"E%d_%d\",\"frames\":[{\"function\":\"work\",\"in_app\":true}]}",
                         w->index, i);
        telemetry_reported_t out = UNTOUCHED;
        telemetry_error_t *err = i == 0 ? telemetry_client_report_crash(
                                              w->client, "{\"type\":\"Storm\"}", 16, &out)
                                        : telemetry_client_capture_error(w->client, report,
                                                                         (size_t)n, &out);
        if (err != NULL) {
            w->other++;
            telemetry_error_free(err);
        } else if (out == TELEMETRY_REPORTED_SUPPRESSED) {
            w->suppressed++;
        } else if (out == TELEMETRY_REPORTED_QUEUED || out == TELEMETRY_REPORTED_DELIVERED) {
            w->sent++;
        } else {
            w->other++;
        }
    }
    return NULL;
}

static void test_error_report_threads(void) {
    telemetry_client_t *client = crash_client(NULL);
    pthread_t threads[CRASH_THREADS];
    struct crash_worker workers[CRASH_THREADS];
    for (int t = 0; t < CRASH_THREADS; t++) {
        workers[t] = (struct crash_worker){client, t, 0, 0, 0};
        CHECK(pthread_create(&threads[t], NULL, crash_many, &workers[t]) == 0, "pthread_create");
    }
    int sent = 0, suppressed = 0, other = 0;
    for (int t = 0; t < CRASH_THREADS; t++) {
        pthread_join(threads[t], NULL);
        sent += workers[t].sent;
        suppressed += workers[t].suppressed;
        other += workers[t].other;
    }
    CHECK(sent == 20 && suppressed == CRASH_THREADS * CRASH_ERRORS - 20 && other == 0,
          "sent %d, suppressed %d, other %d", sent, suppressed, other);
    char *json = delivered(client);
    if (json) {
        CHECK(count_occurrences(json, "\"event\":\"$exception\"") == 20, "delivered %d",
              count_occurrences(json, "\"event\":\"$exception\""));
        CHECK(count_occurrences(json, "\"type\":\"Storm\"") <= 1, "the storm's crash twice");
    }
    telemetry_string_free(json);
    telemetry_client_free(client);
}

int main(void) {
    const char *slow = getenv("TELEMETRY_TEST_SLOWDOWN");
    if (slow != NULL && atoi(slow) > 1) {
        slowdown = atoi(slow);
    }
    test_version_and_null_tolerance();
    test_client_new_errors();
    test_capture_errors();
    test_capture_flush_read();
    test_off_client();
    test_no_memory_sink_and_timeout();
    test_anonymize();
    test_threads();
    test_usage_declaration_errors();
    test_usage_label_sets_and_recording();
    test_usage_cell_views();
    test_usage_sections_and_report();
    test_usage_endpoints_and_server();
    test_usage_threads();
    test_log_take_errors_and_off_by_default();
    test_log_consent_warning();
    test_log_one_warning_per_failure_streak();
    test_log_bound();
    test_log_threads();
    test_log_disable();
    test_error_report_errors();
    test_error_reports_scrubbed_shaped_and_limited();
    test_error_reports_off();
    test_crash_waits_at_most_its_deadline();
    test_error_report_threads();
    /* A client freed without an explicit shutdown shuts down on its own. */
    telemetry_client_t *client = new_client(MEMORY);
    EXPECT_OK(telemetry_client_capture(client, "e", 1, NULL, 0), "capture before free");
    telemetry_client_free(client);

    printf("%d passed, %d failed\n", passed, failed);
    /* LeakSanitizer reports at exit and may end the process without flushing stdio. */
    fflush(stdout);
    return failed == 0 ? 0 : 1;
}
