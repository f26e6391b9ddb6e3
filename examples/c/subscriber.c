/* Subscribes to the first stream of an Umbra session and checks the pictures it decodes
 * against the SDK's built-in test pattern: each picture carries its frame number in a strip at
 * the top; the subscriber regenerates that picture and measures the PSNR.
 *
 *   subscriber --url http://127.0.0.1:8080 --api-key KEY --session-id ID --token TOKEN \
 *              --secret 'correct horse battery staple' --frames 30 --seconds 30
 *
 * Passes when --frames pictures matched (PSNR >= 30 dB, frame numbers increasing). With
 * --expect-mismatch it passes when the subscriber reports OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH
 * (on_error and on_encryption_secret_mismatch) and renders nothing. With --any-picture it only
 * counts decoded pictures (for publishers that do not send the test pattern, e.g. a browser).
 * With --expect-not-encrypted it passes when the subscriber reports
 * OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED exactly once (the publisher declares E2EE but sends plain
 * media), never a mismatch, and renders nothing. */
#include <math.h>

#include "common.h"

#define MIN_PSNR 30.0

static atomic_int connected, disconnected, subscribed_media, mismatch_error, mismatch_event, other_errors;
static atomic_int not_encrypted_errors, decryption_errors;
static atomic_long frames_ok, frames_bad, last_number = -1;
static atomic_int done, audio_frames;
static atomic_llong audio_energy; /* sum of squares / samples, per frame, summed */
static long frames_wanted;
static int any_picture;
static otc_subscriber *_Atomic subscriber; /* made on the dispatch thread, freed by main */

static void on_render_frame(otc_subscriber *sub, void *user_data, const otc_video_frame *frame) {
    (void)sub; (void)user_data;
    if (any_picture) {
        /* Another publisher's pictures (a browser camera): only check they are real pictures. */
        int w = otc_video_frame_get_width(frame), h = otc_video_frame_get_height(frame);
        long ok = w > 0 && h > 0 && otc_video_frame_get_buffer_size(frame) >= (size_t)w * (size_t)h ? atomic_fetch_add(&frames_ok, 1) + 1 : 0;
        if (ok == 1 || (ok && ok % 30 == 0)) printf("subscriber: picture %ld %dx%d\n", ok, w, h);
        if (ok >= frames_wanted) atomic_store(&done, 1);
        return;
    }
    long n = otc_test_pattern_read_frame_number(frame);
    int w = otc_video_frame_get_width(frame), h = otc_video_frame_get_height(frame);
    otc_video_frame *reference = n >= 0 ? otc_test_pattern_frame_new(w, h, (uint32_t)n) : NULL;
    double psnr = reference ? otc_video_frame_psnr(reference, frame) : -1;
    if (reference) otc_video_frame_delete(reference);
    /* Check the plane accessors agree with the size. */
    int planes_ok = otc_video_frame_get_plane_stride(frame, OTC_VIDEO_FRAME_PLANE_Y) == w &&
                    otc_video_frame_get_plane_size(frame, OTC_VIDEO_FRAME_PLANE_U) == (size_t)((w + 1) / 2) * (size_t)((h + 1) / 2) &&
                    otc_video_frame_get_plane_binary_data(frame, OTC_VIDEO_FRAME_PLANE_V) != NULL;
    if (n > atomic_load(&last_number) && psnr >= MIN_PSNR && planes_ok) {
        long ok = atomic_fetch_add(&frames_ok, 1) + 1;
        if (ok <= 3 || ok % 30 == 0) printf("subscriber: frame %ld %dx%d psnr %.1f dB\n", n, w, h, psnr);
        if (ok >= frames_wanted) atomic_store(&done, 1);
    } else {
        atomic_fetch_add(&frames_bad, 1);
        printf("subscriber: frame %ld (after %ld) %dx%d psnr %.1f dB does not match\n", n, atomic_load(&last_number), w, h, psnr);
    }
    if (n >= 0) atomic_store(&last_number, n);
}

static void on_audio(otc_subscriber *sub, void *user_data, const struct otc_audio_data *audio) {
    (void)sub; (void)user_data;
    const int16_t *s = audio->sample_buffer;
    long long sum = 0;
    for (size_t i = 0; i < audio->number_of_samples; i++) sum += (long long)s[i] * s[i];
    if (audio->number_of_samples) atomic_fetch_add(&audio_energy, sum / (long long)audio->number_of_samples);
    atomic_fetch_add(&audio_frames, 1);
}

static void on_sub_connected(otc_subscriber *sub, void *user_data, const otc_stream *stream) {
    (void)sub; (void)user_data;
    printf("subscriber: media connected for stream %s\n", otc_stream_get_id(stream));
    atomic_store(&subscribed_media, 1);
}

static void on_sub_error(otc_subscriber *sub, void *user_data, const char *error_string, enum otc_subscriber_error_code error) {
    (void)sub; (void)user_data;
    printf("subscriber: subscriber error %d (%s): %s\n", (int)error, otc_error_string(error), error_string);
    if (error == OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH) atomic_store(&mismatch_error, 1);
    else if (error == OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED) atomic_fetch_add(&not_encrypted_errors, 1);
    /* Plain frames that do not even parse as SFrame are reported as such (rate-limited) before
     * the verdict; only a publisher that does not encrypt sends them. */
    else if (error == OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR) atomic_fetch_add(&decryption_errors, 1);
    else atomic_fetch_add(&other_errors, 1);
}

static void on_mismatch(otc_subscriber *sub, void *user_data) {
    (void)sub; (void)user_data;
    printf("subscriber: encryption secret mismatch\n");
    atomic_store(&mismatch_event, 1);
}

static void on_match(otc_subscriber *sub, void *user_data) {
    (void)sub; (void)user_data;
    printf("subscriber: encryption secret match\n");
}

static void on_stream_received(otc_session *session, void *user_data, const otc_stream *stream) {
    (void)user_data;
    printf("subscriber: stream %s from connection %s\n", otc_stream_get_id(stream), otc_connection_get_id(otc_stream_get_connection(stream)));
    if (atomic_load(&subscriber)) return; /* one is enough */
    struct otc_subscriber_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.on_connected = on_sub_connected;
    cb.on_render_frame = on_render_frame;
    cb.on_audio_data = on_audio;
    cb.on_error = on_sub_error;
    cb.on_encryption_secret_mismatch = on_mismatch;
    cb.on_encryption_secret_match = on_match;
    otc_subscriber *s = otc_subscriber_new(stream, &cb);
    otc_status rc = otc_session_subscribe(session, s);
    if (rc != OTC_SUCCESS) {
        printf("subscriber: otc_session_subscribe -> %s\n", otc_error_string(rc));
        atomic_fetch_add(&other_errors, 1);
    }
    atomic_store(&subscriber, s);
}

static void on_connected(otc_session *session, void *user_data) {
    (void)user_data;
    printf("subscriber: connected\n");
    /* Say hello to everyone (the publisher checks it with --expect-signal). */
    if (otc_session_send_signal(session, "c-sdk", "hello from the C subscriber") != OTC_SUCCESS) atomic_fetch_add(&other_errors, 1);
    atomic_store(&connected, 1);
}

static void on_disconnected(otc_session *session, void *user_data) {
    (void)session; (void)user_data;
    atomic_store(&disconnected, 1);
}

static void on_session_error(otc_session *session, void *user_data, const char *error_string, enum otc_session_error_code error) {
    (void)session; (void)user_data;
    printf("subscriber: session error %d: %s\n", (int)error, error_string);
    atomic_fetch_add(&other_errors, 1);
}

int main(int argc, char **argv) {
    struct args a = parse_args(argc, argv);
    frames_wanted = a.frames;
    any_picture = a.any_picture;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (otc_init(NULL) != OTC_SUCCESS) return 1;

    struct otc_session_callbacks scb;
    memset(&scb, 0, sizeof scb);
    scb.on_connected = on_connected;
    scb.on_disconnected = on_disconnected;
    scb.on_stream_received = on_stream_received;
    scb.on_error = on_session_error;
    otc_session *session = new_session(&a, &scb);
    if (a.secret && otc_session_set_encryption_secret(session, a.secret) != OTC_SUCCESS) return 1;
    if (otc_session_connect(session, a.token) != OTC_SUCCESS || !wait_for(&connected, a.seconds > 20 ? a.seconds : 20)) {
        fprintf(stderr, "subscriber: not connected\n");
        otc_session_delete(session);
        return 1;
    }

    int ok;
    if (a.expect_not_encrypted) {
        wait_for(&not_encrypted_errors, a.seconds);
        /* A few seconds more: the plain frames keep coming, the report must not repeat. */
        sleep_ms(3000);
        long rendered = atomic_load(&frames_ok) + atomic_load(&frames_bad);
        ok = atomic_load(&not_encrypted_errors) == 1 && !atomic_load(&mismatch_error) && !atomic_load(&mismatch_event) &&
             rendered == 0 && atomic_load(&audio_frames) == 0;
        printf("subscriber: stream-not-encrypted errors %d, mismatch error %d, mismatch event %d, frames rendered %ld, audio frames %d\n",
               atomic_load(&not_encrypted_errors), atomic_load(&mismatch_error), atomic_load(&mismatch_event), rendered,
               atomic_load(&audio_frames));
        printf(ok ? "PASS stream not encrypted reported\n" : "FAIL stream not encrypted not reported as expected\n");
    } else if (a.expect_mismatch) {
        wait_for(&mismatch_event, a.seconds);
        wait_for(&mismatch_error, 1);
        ok = atomic_load(&mismatch_error) && atomic_load(&mismatch_event) && atomic_load(&frames_ok) == 0;
        printf("subscriber: mismatch error %d, mismatch event %d, frames rendered %ld\n", atomic_load(&mismatch_error), atomic_load(&mismatch_event),
               atomic_load(&frames_ok) + atomic_load(&frames_bad));
        printf(ok ? "PASS secret mismatch reported\n" : "FAIL secret mismatch not reported as expected\n");
    } else {
        wait_for(&done, a.seconds);
        ok = atomic_load(&frames_ok) >= frames_wanted && atomic_load(&mismatch_error) == 0;
        if (any_picture) {
            printf("subscriber: %ld pictures decoded\n", atomic_load(&frames_ok));
            printf(ok ? "PASS pictures received\n" : "FAIL not enough pictures\n");
        } else {
            printf("subscriber: %ld frames matched the test pattern, %ld did not\n", atomic_load(&frames_ok), atomic_load(&frames_bad));
            printf(ok ? "PASS frames match the test pattern\n" : "FAIL not enough matching frames\n");
        }
        /* The tone (0.3 of full scale: RMS about 7000) must be heard, not silence. */
        int af = atomic_load(&audio_frames);
        double rms = af ? sqrt((double)atomic_load(&audio_energy) / af) : 0;
        int audio_ok = af >= 10 && (any_picture || rms > 3000); /* a browser's fake microphone may be quiet */
        printf("subscriber: %d audio frames, RMS %.0f\n", af, rms);
        printf(audio_ok ? "PASS audio heard\n" : "FAIL no audio\n");
        ok = ok && audio_ok;
    }
    if (!a.expect_not_encrypted && atomic_load(&decryption_errors)) atomic_fetch_add(&other_errors, atomic_load(&decryption_errors));
    if (!a.expect_not_encrypted && atomic_load(&not_encrypted_errors)) atomic_fetch_add(&other_errors, atomic_load(&not_encrypted_errors));
    if (atomic_load(&other_errors)) {
        printf("subscriber: %d unexpected errors\n", atomic_load(&other_errors));
        ok = 0;
    }

    /* Tell the publisher it can stop. */
    otc_session_send_signal(session, "c-sdk-done", "");
    otc_subscriber *s = atomic_exchange(&subscriber, NULL);
    if (s) {
        otc_session_unsubscribe(session, s);
        otc_subscriber_delete(s);
    }
    otc_session_disconnect(session);
    otc_session_delete(session);
    otc_destroy();
    return ok ? 0 : 1;
}
