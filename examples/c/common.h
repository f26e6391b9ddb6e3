/* Shared by the example programs: argument parsing and a small wait loop.
 * The SDK calls back on its own dispatch thread, so the state the callbacks change is atomic and
 * the main thread polls it. */
#ifndef UMBRA_EXAMPLE_COMMON_H
#define UMBRA_EXAMPLE_COMMON_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <umbra/otc.h>

struct args {
    const char *url, *api_key, *session_id, *token, *secret;
    double seconds;   /* how long to run / to wait at most (connecting included; under valgrind the
                         secret's key derivation alone takes many seconds) */
    long frames;      /* subscriber: pictures that must match the test pattern */
    int expect_mismatch, expect_missing_secret, expect_invalid_secret, expect_signal;
    int width, height, fps; /* publisher: picture size and rate */
    int capturer;           /* publisher: supply the pictures from C instead of the SDK */
    int audio_device;       /* publisher: supply the audio through the audio device hooks */
    int any_picture;        /* subscriber: count decoded pictures without the test pattern check (other publishers, e.g. a browser) */
    int expect_media_failed; /* publisher: on_error must report OTC_PUBLISHER_WEBRTC_ERROR (the router lost the media connection) */
    int expect_not_encrypted; /* subscriber: on_error must report OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED (once), never a mismatch */
    int expect_signal_failure; /* publisher: a subscriber's signal must fail to decrypt (OTC_SESSION_SIGNAL_DECRYPTION_FAILED in on_error) */
};

static void usage(const char *prog) {
    fprintf(stderr,
            "usage: %s --url URL --api-key KEY --session-id ID --token TOKEN [--secret SECRET]\n"
            "          [--seconds N] [--frames N] [--expect-mismatch] [--expect-missing-secret]\n"
            "          [--expect-invalid-secret] [--expect-signal] [--size WxH] [--fps N]\n"
            "          [--capturer] [--audio-device] [--any-picture] [--expect-media-failed]\n"
            "          [--expect-not-encrypted] [--expect-signal-failure]\n",
            prog);
    exit(2);
}

static struct args parse_args(int argc, char **argv) {
    struct args a;
    memset(&a, 0, sizeof a);
    a.seconds = 20;
    a.frames = 30;
    a.width = 320;
    a.height = 240;
    a.fps = 30;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--expect-mismatch")) { a.expect_mismatch = 1; continue; }
        if (!strcmp(k, "--expect-missing-secret")) { a.expect_missing_secret = 1; continue; }
        if (!strcmp(k, "--expect-invalid-secret")) { a.expect_invalid_secret = 1; continue; }
        if (!strcmp(k, "--expect-signal")) { a.expect_signal = 1; continue; }
        if (!strcmp(k, "--capturer")) { a.capturer = 1; continue; }
        if (!strcmp(k, "--audio-device")) { a.audio_device = 1; continue; }
        if (!strcmp(k, "--any-picture")) { a.any_picture = 1; continue; }
        if (!strcmp(k, "--expect-media-failed")) { a.expect_media_failed = 1; continue; }
        if (!strcmp(k, "--expect-not-encrypted")) { a.expect_not_encrypted = 1; continue; }
        if (!strcmp(k, "--expect-signal-failure")) { a.expect_signal_failure = 1; continue; }
        if (!v) usage(argv[0]);
        if (!strcmp(k, "--url")) a.url = v;
        else if (!strcmp(k, "--api-key")) a.api_key = v;
        else if (!strcmp(k, "--session-id")) a.session_id = v;
        else if (!strcmp(k, "--token")) a.token = v;
        else if (!strcmp(k, "--secret")) a.secret = v;
        else if (!strcmp(k, "--seconds")) a.seconds = atof(v);
        else if (!strcmp(k, "--frames")) a.frames = atol(v);
        else if (!strcmp(k, "--fps")) a.fps = atoi(v);
        else if (!strcmp(k, "--size")) {
            if (sscanf(v, "%dx%d", &a.width, &a.height) != 2) usage(argv[0]);
        }
        else usage(argv[0]);
        i++;
    }
    if (!a.url || !a.api_key || !a.session_id || !a.token) usage(argv[0]);
    return a;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until *flag is non-zero or the time is up; returns the flag. */
static inline int wait_for(atomic_int *flag, double seconds) {
    double end = now_seconds() + seconds;
    while (!atomic_load(flag) && now_seconds() < end) sleep_ms(10);
    return atomic_load(flag);
}

/* A session on the given server, or exit. */
static otc_session *new_session(const struct args *a, const struct otc_session_callbacks *cb) {
    otc_session_settings *settings = otc_session_settings_new();
    if (!settings || otc_session_settings_set_server_url(settings, a->url) != OTC_SUCCESS) {
        fprintf(stderr, "bad server URL %s\n", a->url);
        exit(1);
    }
    otc_session *s = otc_session_new_with_settings(a->api_key, a->session_id, cb, settings);
    otc_session_settings_delete(settings); /* the session copied what it needs */
    if (!s) {
        fprintf(stderr, "otc_session_new_with_settings failed\n");
        exit(1);
    }
    return s;
}

#endif
