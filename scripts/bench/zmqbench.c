/* zmqbench: the libzmq side of the side-by-side transport benchmarks in
 * scripts/bench-zmq.sh. It does in C against libzmq what the Go benchmarks
 * in zmtp/bench_test.go do against this project's transport, in one process
 * over loopback TCP:
 *
 *   zmqbench thr null|curve N        N deltas (61-byte payload) PUB -> SUB
 *   zmqbench large null|curve BYTES REPS   one message of BYTES, REPS times
 *   zmqbench fanout SUBS REPS        one delta to SUBS CURVE subscribers
 *
 * Each prints one line of key=value pairs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static char server_public[41], server_secret[41];

static void *make_pub(void *ctx, int curve, char *endpoint, size_t len) {
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    int zero = 0, one = 1;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &zero, sizeof zero);
    if (curve) {
        zmq_setsockopt(pub, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(pub, ZMQ_CURVE_SECRETKEY, server_secret, 40);
    }
    if (zmq_bind(pub, "tcp://127.0.0.1:*") != 0) die("bind");
    zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, endpoint, &len);
    return pub;
}

static void *make_sub(void *ctx, int curve, const char *endpoint, const char *topic) {
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &zero, sizeof zero);
    if (curve) {
        char pub[41], sec[41];
        zmq_curve_keypair(pub, sec);
        zmq_setsockopt(sub, ZMQ_CURVE_SERVERKEY, server_public, 40);
        zmq_setsockopt(sub, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(sub, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    if (zmq_connect(sub, endpoint) != 0) die("connect");
    return sub;
}

/* A 61-byte dynfw/delta payload, as msgpack-python packs it. */
static const unsigned char delta[] = {
    0x84, 0xa6, 's', 'e', 'r', 'i', 'a', 'l', 0xce, 0x00, 0x01, 0xe2, 0x40,
    0xa5, 'd', 'e', 'l', 't', 'a', 0xa8, 'p', 'o', 's', 'i', 't', 'i', 'v', 'e',
    0xa2, 'i', 'p', 0xac, '2', '0', '3', '.', '0', '.', '1', '1', '3', '.', '7', '7',
    0xa2, 't', 's', 0xce, 0x69, 0x21, 0x36, 0x00};

static void send_msg(void *s, const char *topic, const void *body, size_t n) {
    if (zmq_send(s, topic, strlen(topic), ZMQ_SNDMORE) < 0) die("send");
    if (zmq_send(s, body, n, 0) < 0) die("send");
}

/* recv_msg receives one two-frame message and returns the body's size. */
static size_t recv_msg(void *s, zmq_msg_t *body) {
    zmq_msg_t topic;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, s, 0) < 0) die("recv");
    zmq_msg_close(&topic);
    if (zmq_msg_recv(body, s, 0) < 0) die("recv");
    return zmq_msg_size(body);
}

/* warm publishes probes until sub has one, then drains. */
static void warm(void *pub, void *sub) {
    zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
    for (;;) {
        send_msg(pub, "dynfw/warm", "w", 1);
        if (zmq_poll(&it, 1, 20) > 0) break;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        if (zmq_poll(&it, 1, 20) <= 0) break;
        recv_msg(sub, &m);
    }
    zmq_msg_close(&m);
}

struct thr_arg { void *sub; long n; double end; };

static void *thr_recv(void *p) {
    struct thr_arg *a = p;
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < a->n; i++) recv_msg(a->sub, &m);
    a->end = now();
    zmq_msg_close(&m);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: zmqbench thr|large|fanout ...\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2);
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 4096);
    zmq_curve_keypair(server_public, server_secret);
    char ep[256];
    if (!strcmp(argv[1], "thr")) {
        int curve = !strcmp(argv[2], "curve");
        long n = atol(argv[3]);
        void *pub = make_pub(ctx, curve, ep, sizeof ep);
        void *sub = make_sub(ctx, curve, ep, "dynfw/");
        warm(pub, sub);
        struct thr_arg a = {sub, n, 0};
        pthread_t t;
        double start = now();
        pthread_create(&t, NULL, thr_recv, &a);
        for (long i = 0; i < n; i++) send_msg(pub, "dynfw/delta", delta, sizeof delta);
        pthread_join(t, NULL);
        printf("thr mech=%s msgs=%ld secs=%.3f msgs_per_s=%.0f\n", argv[2], n, a.end - start, n / (a.end - start));
    } else if (!strcmp(argv[1], "large")) {
        int curve = !strcmp(argv[2], "curve");
        size_t size = atol(argv[3]);
        int reps = atoi(argv[4]);
        char *body = malloc(size);
        for (size_t i = 0; i < size; i++) body[i] = (char)(i * 7);
        void *pub = make_pub(ctx, curve, ep, sizeof ep);
        void *sub = make_sub(ctx, curve, ep, "dynfw/");
        warm(pub, sub);
        zmq_msg_t m;
        zmq_msg_init(&m);
        printf("large mech=%s bytes=%zu ms=", argv[2], size);
        for (int r = 0; r < reps; r++) {
            double start = now();
            send_msg(pub, "dynfw/list", body, size);
            if (recv_msg(sub, &m) != size) die("size");
            printf("%s%.1f", r ? "," : "", (now() - start) * 1e3);
        }
        printf("\n");
    } else if (!strcmp(argv[1], "fanout")) {
        int n = atoi(argv[2]), reps = atoi(argv[3]);
        void *pub = make_pub(ctx, 1, ep, sizeof ep);
        void **subs = calloc(n, sizeof *subs);
        zmq_pollitem_t *items = calloc(n, sizeof *items);
        for (int i = 0; i < n; i++) {
            subs[i] = make_sub(ctx, 1, ep, "dynfw/");
            items[i] = (zmq_pollitem_t){subs[i], 0, ZMQ_POLLIN, 0};
        }
        /* Wait until every subscriber gets a probe. */
        int *got = calloc(n, sizeof *got);
        int ready = 0;
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (ready < n) {
            send_msg(pub, "dynfw/warm", "w", 1);
            zmq_poll(items, n, 20);
            for (int i = 0; i < n; i++) {
                while (zmq_msg_recv(&m, subs[i], ZMQ_DONTWAIT) >= 0) {
                    if (!zmq_msg_more(&m) && !got[i]) { got[i] = 1; ready++; }
                }
            }
        }
        for (int k = 0; k < 5; k++) { /* drain */
            zmq_poll(items, n, 20);
            for (int i = 0; i < n; i++)
                while (zmq_msg_recv(&m, subs[i], ZMQ_DONTWAIT) >= 0) {}
        }
        printf("fanout subs=%d ms=", n);
        for (int r = 0; r < reps; r++) {
            memset(got, 0, n * sizeof *got);
            int done = 0;
            double start = now();
            send_msg(pub, "dynfw/delta", delta, sizeof delta);
            while (done < n) {
                zmq_poll(items, n, -1);
                for (int i = 0; i < n; i++) {
                    if (!(items[i].revents & ZMQ_POLLIN)) continue;
                    while (zmq_msg_recv(&m, subs[i], ZMQ_DONTWAIT) >= 0) {
                        if (!zmq_msg_more(&m)) { got[i]++; done++; }
                    }
                }
            }
            printf("%s%.2f", r ? "," : "", (now() - start) * 1e3);
        }
        printf("\n");
    }
    return 0;
}
