/* End-to-end encrypted signals through the C API (docs/e2ee-protocol.md §12, docs/c-sdk.md):
 * registers otc_session_set_signal_callbacks, optionally sends one signal once N other
 * participants are connected, and exits 0 when every expected signal or decryption failure has
 * arrived (1 on timeout, or on any signal it did not expect: e.g. a plaintext it must not see).
 *
 *   signals --url U --api-key K --session-id S --token T [--secret SECRET] [--seconds N]
 *           [--peers N --send TYPE:DATA] [--expect-encrypted TYPE:DATA] [--expect-plain TYPE:DATA]
 *           [--expect-failure CODE]
 *
 * It prints "connected" once connected (the test script waits for that line). */
#include "common.h"

struct expectation {
    const char *type, *data; /* split from TYPE:DATA */
    int encrypted;
    atomic_int met;
};

static struct expectation expected[4];
static int n_expected;
static int expected_failure; /* 0: none expected */
static atomic_int failure_met, unexpected, connected, peers;

static void split(char *arg, struct expectation *e, int encrypted) {
    char *colon = strchr(arg, ':');
    if (!colon) { fprintf(stderr, "TYPE:DATA expected, got %s\n", arg); exit(2); }
    *colon = 0;
    e->type = arg;
    e->data = colon + 1;
    e->encrypted = encrypted;
}

static void on_signal(otc_session *s, void *ud, const char *type, const char *data, const otc_connection *from,
                      otc_bool e2ee) {
    (void)s; (void)ud;
    printf("signal type=%s data=%s from=%s encrypted=%d\n", type, data, from ? otc_connection_get_id(from) : "(server)", e2ee);
    for (int i = 0; i < n_expected; i++) {
        struct expectation *e = &expected[i];
        if (!strcmp(e->type, type) && !strcmp(e->data, data) && e->encrypted == (e2ee == OTC_TRUE)) {
            atomic_store(&e->met, 1);
            return;
        }
    }
    atomic_store(&unexpected, 1);
}

static void on_failed(otc_session *s, void *ud, const otc_connection *from, enum otc_signal_decryption_error error,
                      const char *message) {
    (void)s; (void)ud;
    printf("signal decryption failed from=%s error=%d: %s\n", from ? otc_connection_get_id(from) : "(server)", (int)error, message);
    if ((int)error == expected_failure) atomic_store(&failure_met, 1);
    else atomic_store(&unexpected, 1);
}

static void on_connected(otc_session *s, void *ud) { (void)s; (void)ud; atomic_store(&connected, 1); }
static void on_connection_created(otc_session *s, void *ud, const otc_connection *c) {
    (void)s; (void)ud; (void)c;
    atomic_fetch_add(&peers, 1);
}
static void on_error(otc_session *s, void *ud, const char *msg, enum otc_session_error_code code) {
    (void)s; (void)ud;
    /* A missing secret is expected for receivers started without one; anything else is not. */
    printf("session error %d: %s\n", (int)code, msg);
    if (code != OTC_SESSION_ENCRYPTION_SECRET_MISSING) atomic_store(&unexpected, 1);
}

static int all_met(void) {
    for (int i = 0; i < n_expected; i++) if (!atomic_load(&expected[i].met)) return 0;
    return !expected_failure || atomic_load(&failure_met);
}

int main(int argc, char **argv) {
    /* Our own options first; the rest go to the shared parser. */
    char *send = NULL;
    int want_peers = 0;
    char *rest[32];
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ours = 1;
        if (v && !strcmp(k, "--send")) send = v;
        else if (v && !strcmp(k, "--peers")) want_peers = atoi(v);
        else if (v && !strcmp(k, "--expect-encrypted") && n_expected < 4) split(v, &expected[n_expected++], 1);
        else if (v && !strcmp(k, "--expect-plain") && n_expected < 4) split(v, &expected[n_expected++], 0);
        else if (v && !strcmp(k, "--expect-failure")) expected_failure = atoi(v);
        else ours = 0;
        if (ours) { i++; continue; }
        if (nrest < 31) rest[nrest++] = argv[i];
    }
    struct args a = parse_args(nrest, rest);
    if (otc_init(NULL) != OTC_SUCCESS) return 1;
    struct otc_session_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.on_connected = on_connected;
    cb.on_connection_created = on_connection_created;
    cb.on_error = on_error;
    otc_session *session = new_session(&a, &cb);
    struct otc_session_signal_callbacks scb;
    memset(&scb, 0, sizeof scb);
    scb.on_signal_received = on_signal;
    scb.on_signal_decryption_failed = on_failed;
    int ok = otc_session_set_signal_callbacks(session, &scb) == OTC_SUCCESS;
    if (ok && a.secret) ok = otc_session_set_encryption_secret(session, a.secret) == OTC_SUCCESS;
    if (ok) ok = otc_session_connect(session, a.token) == OTC_SUCCESS;
    if (ok) ok = wait_for(&connected, a.seconds);
    if (ok) {
        printf("connected\n");
        fflush(stdout);
    }
    double end = now_seconds() + a.seconds;
    if (ok && send) {
        while (atomic_load(&peers) < want_peers && now_seconds() < end) sleep_ms(10);
        char *colon = strchr(send, ':');
        if (!colon) { fprintf(stderr, "--send TYPE:DATA\n"); return 2; }
        *colon = 0;
        otc_status rc = otc_session_send_signal(session, send, colon + 1);
        printf("sent %s (status %d)\n", send, (int)rc);
        ok = rc == OTC_SUCCESS;
    }
    while (ok && !all_met() && !atomic_load(&unexpected) && now_seconds() < end) sleep_ms(10);
    /* A moment for anything that should not arrive (a second, unexpected signal). */
    if (ok && all_met()) sleep_ms(300);
    int result = ok && all_met() && !atomic_load(&unexpected) ? 0 : 1;
    printf("%s\n", result ? "FAILED" : "ok");
    fflush(stdout);
    otc_session_disconnect(session);
    otc_session_delete(session);
    otc_destroy();
    return result;
}
