// Build: gcc -O2 -o bare_receiver_c bare_receiver.c -lcrypto   (benches/ingest/run.sh does)
//
// Bare C GitHub-webhook receiver: a benchmark floor that only checks the HMAC.
// Env: AUGER_WEBHOOK_SECRET (HMAC key), PORT (default 0 = ephemeral), THREADS (default 1).
// Each thread runs its own level-triggered epoll loop on its own SO_REUSEPORT listener.
// Replies 202 if X-Hub-Signature-256 matches HMAC-SHA256(body), 401 otherwise.
// HTTP/1.1 keep-alive and pipelining; no JSON, no disk.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (1 << 20)      // larger bodies -> close the connection
#define MAX_HEAD (64 << 10)     // larger header blocks -> close the connection
#define INIT_CAP (16 << 10)

static const char RESP_202[] = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
static const char RESP_401[] = "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n";

static const char *secret;
static size_t secret_len;

struct conn { int fd; char *buf; size_t len, cap; };

static void die(const char *what) { perror(what); exit(1); }

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decode "sha256=<64 hex>" into out[32]; returns 0 on success.
static int parse_sig(const char *v, size_t n, unsigned char out[32]) {
    if (n != 7 + 64 || memcmp(v, "sha256=", 7) != 0) return -1;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(v[7 + 2 * i]), lo = hexval(v[8 + 2 * i]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

// Send the whole (tiny) response, looping on partial sends. Returns 0 on success.
static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }  // EAGAIN: give up on this client
        p += w; n -= (size_t)w;
    }
    return 0;
}

// Parse and answer every complete request in c->buf. Returns -1 to close the connection.
static int process(struct conn *c, EVP_MAC_CTX *mac) {
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return c->len > MAX_HEAD ? -1 : 0;
        size_t head_len = (size_t)(end - c->buf) + 4;

        // Walk header lines (skip the request line) for the two headers we need.
        size_t clen = 0;
        int have_sig = 0;
        unsigned char sig[32];
        char *line = memmem(c->buf, head_len, "\r\n", 2) + 2;
        while (line < end) {
            char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
            char *colon = memchr(line, ':', (size_t)(eol - line));
            if (colon) {
                size_t nlen = (size_t)(colon - line);
                char *v = colon + 1, *ve = eol;
                while (v < ve && (*v == ' ' || *v == '\t')) v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                    char tmp[24];
                    size_t vn = (size_t)(ve - v);
                    if (vn == 0 || vn >= sizeof tmp) return -1;
                    memcpy(tmp, v, vn); tmp[vn] = 0;
                    char *e;
                    unsigned long long x = strtoull(tmp, &e, 10);
                    if (*e || x > MAX_BODY) return -1;
                    clen = (size_t)x;
                } else if (nlen == 19 && strncasecmp(line, "X-Hub-Signature-256", 19) == 0) {
                    have_sig = parse_sig(v, (size_t)(ve - v), sig) == 0;
                }
            }
            line = eol + 2;
        }

        // Wait for the whole body, growing the buffer if needed.
        size_t total = head_len + clen;
        if (c->len < total) {
            if (c->cap < total) {
                char *nb = realloc(c->buf, total);
                if (!nb) return -1;
                c->buf = nb; c->cap = total;
            }
            return 0;
        }

        // HMAC-SHA256 of the body (key was set once; NULL key re-uses it), constant-time compare.
        unsigned char md[32];
        size_t mdlen = 0;
        int ok = have_sig && EVP_MAC_init(mac, NULL, 0, NULL) &&
                 EVP_MAC_update(mac, (unsigned char *)c->buf + head_len, clen) &&
                 EVP_MAC_final(mac, md, &mdlen, sizeof md) && mdlen == 32 &&
                 CRYPTO_memcmp(md, sig, 32) == 0;
        const char *r = ok ? RESP_202 : RESP_401;
        if (send_all(c->fd, r, ok ? sizeof RESP_202 - 1 : sizeof RESP_401 - 1) < 0) return -1;

        // Keep pipelined/leftover bytes and parse on.
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
    }
}

static void close_conn(struct conn *c) { close(c->fd); free(c->buf); free(c); }

// One epoll loop serving one listening socket.
static void *serve(void *arg) {
    int lfd = (int)(long)arg;
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};  // NULL marks the listener
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");

    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *mac = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!mac || !EVP_MAC_init(mac, (const unsigned char *)secret, secret_len, params))
        die("EVP_MAC setup");

    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {  // accept everything pending
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd; c->cap = INIT_CAP; c->buf = malloc(c->cap);
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) close_conn(c);
                }
                continue;
            }
            // Read until EAGAIN (growing the buffer when full), then parse.
            // dead: 1 = EOF/error (answer what arrived, then close), 2 = close now.
            int dead = 0;
            for (;;) {
                if (c->len == c->cap) {
                    if (process(c, mac) < 0) { dead = 2; break; }  // drain complete requests first
                    if (c->len < c->cap) continue;
                    if (c->cap >= MAX_HEAD + MAX_BODY) { dead = 2; break; }
                    char *nb = realloc(c->buf, c->cap * 2);
                    if (!nb) { dead = 2; break; }
                    c->buf = nb; c->cap *= 2;
                }
                ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
                if (r > 0) { c->len += (size_t)r; continue; }
                if (r < 0 && errno == EINTR) continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                dead = 1;  // EOF or error (still answer what was fully received)
                break;
            }
            if (dead == 2 || process(c, mac) < 0 || dead) close_conn(c);  // close() also removes it from epoll
        }
    }
    return NULL;
}

static int make_listener(int port, int reuseport) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(fd, 1024) < 0) die("listen");
    return fd;
}

int main(void) {
    secret = getenv("AUGER_WEBHOOK_SECRET");
    if (!secret) { fprintf(stderr, "AUGER_WEBHOOK_SECRET is not set\n"); return 1; }
    secret_len = strlen(secret);
    int port = getenv("PORT") ? atoi(getenv("PORT")) : 0;
    int nthreads = getenv("THREADS") ? atoi(getenv("THREADS")) : 1;
    if (nthreads < 1) nthreads = 1;

    // First listener picks the port; the rest join it via SO_REUSEPORT.
    int *lfds = calloc((size_t)nthreads, sizeof *lfds);
    lfds[0] = make_listener(port, nthreads > 1);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    if (getsockname(lfds[0], (struct sockaddr *)&a, &alen) < 0) die("getsockname");
    port = ntohs(a.sin_port);
    for (int i = 1; i < nthreads; i++) lfds[i] = make_listener(port, 1);

    printf("bare receiver listening on http://127.0.0.1:%d\n", port);
    fflush(stdout);

    for (int i = 1; i < nthreads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(long)lfds[i]) != 0) die("pthread_create");
    }
    serve((void *)(long)lfds[0]);
    return 0;
}
