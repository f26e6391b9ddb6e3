/* A late joiner: connects to a session and prints one line per session and publisher callback,
 * so a checker can compare what the C SDK reported with what the session holds.
 *
 *   late-joiner --url http://127.0.0.1:8080 --api-key KEY --session-id ID --token TOKEN
 *
 * Lines on stdout (ids as the SDK gives them):
 *   connected | disconnected
 *   connection_created ID | connection_dropped ID
 *   stream_received ID | stream_dropped ID
 *   stream_has_audio_changed ID 0|1 | stream_has_video_changed ID 0|1
 *   stream_video_dimensions_changed ID W H
 *   publisher_stream ID                       (its own publisher's stream)
 *   mute_forced publish_audio=0|1             (otc_publisher_get_publish_audio after the mute)
 *   error session|publisher CODE TEXT
 *
 * Commands on stdin, one a line: "publish" (the test pattern and tone; in a relayed session
 * with no subscriber nothing is encoded), "quit" (or end of input): unpublish, disconnect, free
 * everything and exit 0. --seconds bounds the whole run (exit 1 when it runs out).
 *
 * Run by examples/late_joiner_check.rs (crates/umbra-client), which makes the session and the
 * crowd in it: see examples/c/run-tests.sh. */
#include <pthread.h>
#include <stdarg.h>
#include <unistd.h>

#include "common.h"

static otc_session *session;
static otc_publisher *publisher;

/* Every callback runs on the session's dispatch thread, so lines never interleave; flushed so
 * the checker sees each at once. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void on_connected(otc_session *s, void *ud) { (void)s; (void)ud; say("connected"); }
static void on_disconnected(otc_session *s, void *ud) { (void)s; (void)ud; say("disconnected"); }

static void on_connection_created(otc_session *s, void *ud, const otc_connection *c) {
    (void)s; (void)ud;
    say("connection_created %s", otc_connection_get_id(c));
}

static void on_connection_dropped(otc_session *s, void *ud, const otc_connection *c) {
    (void)s; (void)ud;
    say("connection_dropped %s", otc_connection_get_id(c));
}

static void on_stream_received(otc_session *s, void *ud, const otc_stream *st) {
    (void)s; (void)ud;
    say("stream_received %s", otc_stream_get_id(st));
}

static void on_stream_dropped(otc_session *s, void *ud, const otc_stream *st) {
    (void)s; (void)ud;
    say("stream_dropped %s", otc_stream_get_id(st));
}

static void on_has_audio(otc_session *s, void *ud, const otc_stream *st, otc_bool has_audio) {
    (void)s; (void)ud;
    /* The stream object is updated before the callback: both must agree. */
    if (otc_stream_has_audio(st) != has_audio) say("error session 0 stream object not updated");
    say("stream_has_audio_changed %s %d", otc_stream_get_id(st), has_audio);
}

static void on_has_video(otc_session *s, void *ud, const otc_stream *st, otc_bool has_video) {
    (void)s; (void)ud;
    if (otc_stream_has_video(st) != has_video) say("error session 0 stream object not updated");
    say("stream_has_video_changed %s %d", otc_stream_get_id(st), has_video);
}

static void on_dimensions(otc_session *s, void *ud, const otc_stream *st, int w, int h) {
    (void)s; (void)ud;
    say("stream_video_dimensions_changed %s %d %d", otc_stream_get_id(st), w, h);
}

static void on_session_error(otc_session *s, void *ud, const char *text, enum otc_session_error_code code) {
    (void)s; (void)ud;
    say("error session %d %s", (int)code, text);
}

static void on_publisher_stream(otc_publisher *p, void *ud, const otc_stream *st) {
    (void)p; (void)ud;
    say("publisher_stream %s", otc_stream_get_id(st));
}

static void on_publisher_error(otc_publisher *p, void *ud, const char *text, enum otc_publisher_error_code code) {
    (void)p; (void)ud;
    say("error publisher %d %s", (int)code, text);
}

static void on_mute_forced(otc_publisher *p, void *ud) {
    (void)ud;
    say("mute_forced publish_audio=%d", otc_publisher_get_publish_audio(p));
}

static void publish(void) {
    if (publisher) return;
    struct otc_publisher_callbacks cb = {0};
    cb.on_stream_created = on_publisher_stream;
    cb.on_error = on_publisher_error;
    cb.on_mute_forced = on_mute_forced;
    otc_publisher_settings *settings = otc_publisher_settings_new();
    otc_publisher_settings_set_name(settings, "c late joiner");
    otc_publisher_settings_set_test_pattern(settings, 160, 120, 15);
    publisher = otc_publisher_new_with_settings(&cb, settings);
    otc_publisher_settings_delete(settings);
    if (!publisher) {
        say("error publisher 0 otc_publisher_new_with_settings failed");
        return;
    }
    otc_status rc = otc_session_publish(session, publisher);
    if (rc != OTC_SUCCESS) say("error publisher %d otc_session_publish: %s", rc, otc_error_string(rc));
}

/* Bounds the run: ends the process if the checker never says quit. Cancelled (in its sleep, a
 * cancellation point) and joined at the end, so no thread is left running at exit. */
static void *watchdog(void *seconds) {
    sleep_ms((long)(*(double *)seconds * 1000));
    fprintf(stderr, "late-joiner: --seconds ran out\n");
    _exit(1);
    return NULL;
}

int main(int argc, char **argv) {
    struct args a = parse_args(argc, argv);
    pthread_t dog;
    if (pthread_create(&dog, NULL, watchdog, &a.seconds) != 0) return 1;
    otc_init(NULL);
    struct otc_session_callbacks cb = {0};
    cb.on_connected = on_connected;
    cb.on_disconnected = on_disconnected;
    cb.on_connection_created = on_connection_created;
    cb.on_connection_dropped = on_connection_dropped;
    cb.on_stream_received = on_stream_received;
    cb.on_stream_dropped = on_stream_dropped;
    cb.on_stream_has_audio_changed = on_has_audio;
    cb.on_stream_has_video_changed = on_has_video;
    cb.on_stream_video_dimensions_changed = on_dimensions;
    cb.on_error = on_session_error;
    session = new_session(&a, &cb);
    otc_status rc = otc_session_connect(session, a.token);
    if (rc != OTC_SUCCESS) {
        fprintf(stderr, "otc_session_connect: %s\n", otc_error_string(rc));
        return 1;
    }
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "publish", 7)) publish();
        else if (!strncmp(line, "quit", 4)) break;
    }
    if (publisher) {
        otc_session_unpublish(session, publisher);
        otc_publisher_delete(publisher);
    }
    otc_session_disconnect(session);
    otc_session_delete(session);
    otc_destroy();
    pthread_cancel(dog);
    pthread_join(dog, NULL);
    return 0;
}
