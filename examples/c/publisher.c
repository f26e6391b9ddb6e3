/* Publishes the SDK's built-in test pattern (and tone) into an Umbra session.
 *
 *   publisher --url http://127.0.0.1:8080 --api-key KEY --session-id ID --token TOKEN \
 *             --secret 'correct horse battery staple' --seconds 20
 *
 * With --expect-invalid-secret it checks that otc_session_set_encryption_secret refuses the
 * given secret with OTC_SESSION_INVALID_ENCRYPTION_SECRET; with --expect-missing-secret (and no
 * --secret) that connecting reports OTC_SESSION_ENCRYPTION_SECRET_MISSING and publishing fails
 * with it. --capturer supplies the pictures from a C thread through the video capturer
 * interface (the same test pattern, so the subscriber checks them alike); --audio-device
 * supplies a 440 Hz tone through the audio device hooks. --expect-signal fails unless a
 * subscriber's signal arrives. It stops early when a subscriber signals "c-sdk-done".
 * --expect-media-failed fails unless on_error reports OTC_PUBLISHER_WEBRTC_ERROR within --seconds
 * (run against a server whose media router is unreachable: it reports media_failed). Exit status
 * 0 when everything expected happened. */
#include <math.h>
#include <pthread.h>

#include "common.h"

static atomic_int connected, disconnected, stream_created, session_missing_secret, publisher_missing_secret, other_errors, signals, subscriber_done,
    media_failed;
static struct args args;

/* ---- An application video capturer: a thread that draws the test pattern and provides it. */

static atomic_int capture_running;
static pthread_t capture_thread;
static const otc_video_capturer *_Atomic capturer_handle;

static void *capture_loop(void *unused) {
    (void)unused;
    uint32_t n = 0;
    long period_ms = 1000 / args.fps;
    while (atomic_load(&capture_running)) {
        otc_video_frame *f = otc_test_pattern_frame_new(args.width, args.height, n++);
        if (otc_video_capturer_provide_frame(atomic_load(&capturer_handle), 0, f) != OTC_SUCCESS) atomic_fetch_add(&other_errors, 1);
        otc_video_frame_delete(f);
        sleep_ms(period_ms);
    }
    return NULL;
}

static otc_bool capturer_init(const otc_video_capturer *capturer, void *user_data) {
    (void)user_data;
    atomic_store(&capturer_handle, capturer);
    return OTC_TRUE;
}

static otc_bool capturer_start(const otc_video_capturer *capturer, void *user_data) {
    (void)capturer; (void)user_data;
    atomic_store(&capture_running, 1);
    return pthread_create(&capture_thread, NULL, capture_loop, NULL) == 0 ? OTC_TRUE : OTC_FALSE;
}

static otc_bool capturer_stop(const otc_video_capturer *capturer, void *user_data) {
    (void)capturer; (void)user_data;
    atomic_store(&capture_running, 0);
    pthread_join(capture_thread, NULL);
    return OTC_TRUE;
}

static otc_bool capturer_settings(const otc_video_capturer *capturer, void *user_data, struct otc_video_capturer_settings *settings) {
    (void)capturer; (void)user_data;
    settings->format = OTC_VIDEO_FRAME_FORMAT_YUV420P;
    settings->width = args.width;
    settings->height = args.height;
    settings->fps = args.fps;
    return OTC_TRUE;
}

/* ---- An application audio device: a thread that writes a 440 Hz tone in 10 ms blocks. */

static atomic_int audio_running;
static pthread_t audio_thread;

static void *audio_loop(void *unused) {
    (void)unused;
    int16_t block[480];
    uint64_t t = 0;
    while (atomic_load(&audio_running)) {
        for (int i = 0; i < 480; i++, t++) block[i] = (int16_t)(0.3 * 32767 * sin(2 * M_PI * 440.0 * (double)t / 48000.0));
        otc_audio_device_write_capture_data(block, 480);
        sleep_ms(10);
    }
    return NULL;
}

static otc_bool audio_start(const otc_audio_device *device, void *user_data) {
    (void)device; (void)user_data;
    atomic_store(&audio_running, 1);
    return pthread_create(&audio_thread, NULL, audio_loop, NULL) == 0 ? OTC_TRUE : OTC_FALSE;
}

static otc_bool audio_stop(const otc_audio_device *device, void *user_data) {
    (void)device; (void)user_data;
    atomic_store(&audio_running, 0);
    pthread_join(audio_thread, NULL);
    return OTC_TRUE;
}

static void on_signal(otc_session *session, void *user_data, const char *type, const char *signal, const otc_connection *connection) {
    (void)session; (void)user_data;
    printf("publisher: signal %s: %s from %s\n", type, signal, connection ? otc_connection_get_id(connection) : "the server");
    if (!strcmp(type, "c-sdk")) atomic_fetch_add(&signals, 1);
    if (!strcmp(type, "c-sdk-done")) atomic_store(&subscriber_done, 1);
}

static void on_connected(otc_session *session, void *user_data) {
    (void)session; (void)user_data;
    printf("publisher: connected\n");
    atomic_store(&connected, 1);
}

static void on_disconnected(otc_session *session, void *user_data) {
    (void)session; (void)user_data;
    printf("publisher: disconnected\n");
    atomic_store(&disconnected, 1);
}

static atomic_int signal_failures;

static void on_session_error(otc_session *session, void *user_data, const char *error_string, enum otc_session_error_code error) {
    (void)session; (void)user_data;
    printf("publisher: session error %d (%s): %s\n", (int)error, otc_error_string(error), error_string);
    if (error == OTC_SESSION_ENCRYPTION_SECRET_MISSING) atomic_store(&session_missing_secret, 1);
    /* A subscriber's end-to-end encrypted signal under another secret (docs/e2ee-protocol.md §12). */
    else if (error == OTC_SESSION_SIGNAL_DECRYPTION_FAILED) atomic_fetch_add(&signal_failures, 1);
    else atomic_fetch_add(&other_errors, 1);
}

static void on_stream_created(otc_publisher *publisher, void *user_data, const otc_stream *stream) {
    (void)publisher; (void)user_data;
    printf("publisher: stream %s (%s) created\n", otc_stream_get_id(stream), otc_stream_get_name(stream));
    fflush(stdout);
    atomic_store(&stream_created, 1);
}

static void on_publisher_error(otc_publisher *publisher, void *user_data, const char *error_string, enum otc_publisher_error_code error) {
    (void)publisher; (void)user_data;
    printf("publisher: publisher error %d: %s\n", (int)error, error_string);
    /* Equal to OTC_SESSION_ENCRYPTION_SECRET_MISSING, as the vendor SDK reports it. */
    if ((int)error == (int)OTC_SESSION_ENCRYPTION_SECRET_MISSING) atomic_store(&publisher_missing_secret, 1);
    else if (error == OTC_PUBLISHER_WEBRTC_ERROR && args.expect_media_failed) atomic_store(&media_failed, 1);
    else atomic_fetch_add(&other_errors, 1);
}

int main(int argc, char **argv) {
    struct args a = parse_args(argc, argv);
    args = a;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (otc_init(NULL) != OTC_SUCCESS) return 1;
    if (a.audio_device) {
        struct otc_audio_device_callbacks dev;
        memset(&dev, 0, sizeof dev);
        dev.start_capturer = audio_start;
        dev.stop_capturer = audio_stop;
        if (otc_set_audio_device(&dev) != OTC_SUCCESS) return 1;
    }

    struct otc_session_callbacks scb;
    memset(&scb, 0, sizeof scb);
    scb.on_connected = on_connected;
    scb.on_disconnected = on_disconnected;
    scb.on_error = on_session_error;
    scb.on_signal_received = on_signal;
    otc_session *session = new_session(&a, &scb);
    int ok = 1;

    if (a.secret) {
        otc_status rc = otc_session_set_encryption_secret(session, a.secret);
        if (a.expect_invalid_secret) {
            printf("publisher: otc_session_set_encryption_secret -> %d (%s)\n", rc, otc_error_string(rc));
            ok = rc == OTC_SESSION_INVALID_ENCRYPTION_SECRET;
            otc_session_delete(session);
            otc_destroy();
            printf(ok ? "PASS invalid secret refused\n" : "FAIL invalid secret not refused\n");
            return ok ? 0 : 1;
        }
        if (rc != OTC_SUCCESS) {
            fprintf(stderr, "publisher: secret refused: %s\n", otc_error_string(rc));
            return 1;
        }
    }

    otc_status rc = otc_session_connect(session, a.token);
    if (rc != OTC_SUCCESS || !wait_for(&connected, a.seconds > 20 ? a.seconds : 20)) {
        fprintf(stderr, "publisher: not connected (%s)\n", otc_error_string(rc));
        otc_session_delete(session);
        return 1;
    }

    struct otc_publisher_callbacks pcb;
    memset(&pcb, 0, sizeof pcb);
    pcb.on_stream_created = on_stream_created;
    pcb.on_error = on_publisher_error;
    otc_publisher_settings *ps = otc_publisher_settings_new();
    otc_publisher_settings_set_name(ps, "c-publisher");
    struct otc_video_capturer_callbacks ccb;
    memset(&ccb, 0, sizeof ccb);
    ccb.init = capturer_init;
    ccb.start = capturer_start;
    ccb.stop = capturer_stop;
    ccb.get_capture_settings = capturer_settings;
    if (a.capturer) otc_publisher_settings_set_video_capturer(ps, &ccb);
    else if (otc_publisher_settings_set_test_pattern(ps, a.width, a.height, a.fps) != OTC_SUCCESS) return 1;
    otc_publisher *publisher = otc_publisher_new_with_settings(&pcb, ps);
    otc_publisher_settings_delete(ps);
    if (!publisher) {
        fprintf(stderr, "publisher: otc_publisher_new failed\n");
        return 1;
    }
    rc = otc_session_publish(session, publisher);

    if (a.expect_missing_secret) {
        /* Both are reported; the session's error and the publisher's come from different
         * threads of the SDK, so their order is not fixed: wait for each. */
        int reported = wait_for(&publisher_missing_secret, 10);
        wait_for(&session_missing_secret, 10);
        printf("publisher: otc_session_publish -> %d (%s); session on_error missing-secret: %d; publisher on_error: %d\n", rc,
               otc_error_string(rc), atomic_load(&session_missing_secret), reported);
        ok = (int)rc == (int)OTC_SESSION_ENCRYPTION_SECRET_MISSING && atomic_load(&session_missing_secret) && reported &&
             atomic_load(&connected);
        printf(ok ? "PASS missing secret reported\n" : "FAIL missing secret not reported as expected\n");
    } else if (rc != OTC_SUCCESS || !wait_for(&stream_created, 20)) {
        fprintf(stderr, "publisher: publish failed: %s\n", otc_error_string(rc));
        ok = 0;
    } else if (a.expect_media_failed) {
        ok = wait_for(&media_failed, a.seconds);
        otc_session_unpublish(session, publisher);
        printf(ok ? "PASS the router's media_failed reached on_error as OTC_PUBLISHER_WEBRTC_ERROR\n"
                  : "FAIL no OTC_PUBLISHER_WEBRTC_ERROR\n");
    } else {
        /* Publish until the subscriber says it is done, or for the requested time at most. */
        double end = now_seconds() + a.seconds;
        while (now_seconds() < end && !atomic_load(&disconnected) && !atomic_load(&subscriber_done)) sleep_ms(50);
        if (atomic_load(&disconnected)) {
            fprintf(stderr, "publisher: disconnected early\n");
            ok = 0;
        }
        if (otc_session_unpublish(session, publisher) != OTC_SUCCESS) ok = 0;
        if (a.expect_signal && !atomic_load(&signals)) {
            fprintf(stderr, "publisher: no signal from the subscriber\n");
            ok = 0;
        }
        if (ok) printf("PASS published until %s\n", atomic_load(&subscriber_done) ? "the subscriber was done" : "the time was up");
    }

    otc_publisher_delete(publisher);
    otc_session_disconnect(session);
    otc_session_delete(session);
    otc_destroy();
    if (a.expect_signal_failure != (atomic_load(&signal_failures) > 0)) {
        fprintf(stderr, "publisher: %d signals failed to decrypt (%s)\n", atomic_load(&signal_failures),
                a.expect_signal_failure ? "expected some" : "expected none");
        ok = 0;
    }
    if (atomic_load(&other_errors)) {
        fprintf(stderr, "publisher: %d unexpected errors\n", atomic_load(&other_errors));
        ok = 0;
    }
    return ok ? 0 : 1;
}
