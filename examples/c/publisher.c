/* Publishes the SDK's built-in test pattern (and tone) into an Umbra session.
 *
 *   publisher --url http://127.0.0.1:8080 --api-key KEY --session-id ID --token TOKEN \
 *             --secret 'correct horse battery staple' --seconds 20
 *
 * With --expect-invalid-secret it checks that otc_session_set_encryption_secret refuses the
 * given secret with OTC_SESSION_INVALID_ENCRYPTION_SECRET; with --expect-missing-secret (and no
 * --secret) that connecting reports OTC_SESSION_ENCRYPTION_SECRET_MISSING and publishing fails
 * with it. Exit status 0 when everything expected happened. */
#include "common.h"

static atomic_int connected, disconnected, stream_created, session_missing_secret, publisher_missing_secret, other_errors;

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

static void on_session_error(otc_session *session, void *user_data, const char *error_string, enum otc_session_error_code error) {
    (void)session; (void)user_data;
    printf("publisher: session error %d (%s): %s\n", (int)error, otc_error_string(error), error_string);
    if (error == OTC_SESSION_ENCRYPTION_SECRET_MISSING) atomic_store(&session_missing_secret, 1);
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
    else atomic_fetch_add(&other_errors, 1);
}

int main(int argc, char **argv) {
    struct args a = parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (otc_init(NULL) != OTC_SUCCESS) return 1;

    struct otc_session_callbacks scb;
    memset(&scb, 0, sizeof scb);
    scb.on_connected = on_connected;
    scb.on_disconnected = on_disconnected;
    scb.on_error = on_session_error;
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
    if (rc != OTC_SUCCESS || !wait_for(&connected, 20)) {
        fprintf(stderr, "publisher: not connected (%s)\n", otc_error_string(rc));
        otc_session_delete(session);
        return 1;
    }

    struct otc_publisher_callbacks pcb;
    memset(&pcb, 0, sizeof pcb);
    pcb.on_stream_created = on_stream_created;
    pcb.on_error = on_publisher_error;
    otc_publisher *publisher = otc_publisher_new("c-publisher", NULL /* built-in test pattern */, &pcb);
    if (!publisher) {
        fprintf(stderr, "publisher: otc_publisher_new failed\n");
        return 1;
    }
    rc = otc_session_publish(session, publisher);

    if (a.expect_missing_secret) {
        int reported = wait_for(&publisher_missing_secret, 10);
        printf("publisher: otc_session_publish -> %d (%s); session on_error missing-secret: %d; publisher on_error: %d\n", rc,
               otc_error_string(rc), atomic_load(&session_missing_secret), reported);
        ok = (int)rc == (int)OTC_SESSION_ENCRYPTION_SECRET_MISSING && atomic_load(&session_missing_secret) && reported &&
             atomic_load(&connected);
        printf(ok ? "PASS missing secret reported\n" : "FAIL missing secret not reported as expected\n");
    } else if (rc != OTC_SUCCESS || !wait_for(&stream_created, 20)) {
        fprintf(stderr, "publisher: publish failed: %s\n", otc_error_string(rc));
        ok = 0;
    } else {
        /* Publish for the requested time (the subscriber checks what arrives). */
        double end = now_seconds() + a.seconds;
        while (now_seconds() < end && !atomic_load(&disconnected)) sleep_ms(50);
        if (atomic_load(&disconnected)) {
            fprintf(stderr, "publisher: disconnected early\n");
            ok = 0;
        }
        if (otc_session_unpublish(session, publisher) != OTC_SUCCESS) ok = 0;
    }

    otc_publisher_delete(publisher);
    otc_session_disconnect(session);
    otc_session_delete(session);
    otc_destroy();
    if (atomic_load(&other_errors)) {
        fprintf(stderr, "publisher: %d unexpected errors\n", atomic_load(&other_errors));
        ok = 0;
    }
    return ok ? 0 : 1;
}
