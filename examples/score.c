/*
 * score.c: srppod from C with libcurl, over the daemon's Unix socket (CURLOPT_UNIX_SOCKET_PATH).
 *
 * Reads one JSON request body from stdin, POSTs it to PATH (default /v1/score), prints the answer
 * body on stdout. Any language with an HTTP client that can dial a Unix socket does the same.
 *
 *   cc -O2 -Wall examples/score.c -lcurl -o score
 *   echo '{"items":[{"prompt_ids":[1,9690,28],"response_ids":[253,1345,2]}]}' | ./score /tmp/srppod.sock
 *   echo '{"text":"Hello world"}' | ./score /tmp/srppod.sock /v1/tokenize
 *
 * Exit status: 0 on HTTP 200; 1 on any other answer (the daemon's JSON error, with its code, goes
 * to stderr) or a transport failure; 2 on a usage error.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is read from outside is bounded: the request from stdin and the answer from the daemon. */
#define MAX_REQUEST_BYTES (8u << 20)   /* srppod's max_body_bytes for /v1/score */
#define MAX_ANSWER_BYTES (256u << 20)  /* per-token log-probs of a full request fit well within */

struct buffer {
    char *data;
    size_t size, limit;
};

/* Appends n bytes; 0 when over the limit or out of memory. */
static int append(struct buffer *b, const char *bytes, size_t n) {
    if (n > b->limit - b->size) return 0;
    char *grown = realloc(b->data, b->size + n + 1);
    if (!grown) return 0;
    memcpy(grown + b->size, bytes, n);
    b->data = grown;
    b->size += n;
    b->data[b->size] = '\0';
    return 1;
}

/* libcurl's write callback: returning less than given aborts the transfer (answer too large). */
static size_t on_answer(char *bytes, size_t size, size_t count, void *user) {
    return append(user, bytes, size * count) ? size * count : 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: %s SOCKET [PATH] < request.json   (PATH defaults to /v1/score)\n", argv[0]);
        return 2;
    }
    const char *socket_path = argv[1], *path = argc == 3 ? argv[2] : "/v1/score";

    struct buffer request = {NULL, 0, MAX_REQUEST_BYTES}, answer = {NULL, 0, MAX_ANSWER_BYTES};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (!append(&request, chunk, n)) {
            fprintf(stderr, "score: the request on stdin exceeds %u bytes\n", MAX_REQUEST_BYTES);
            return 1;
        }
    }
    if (request.size == 0) {
        fprintf(stderr, "score: no request on stdin\n");
        return 2;
    }

    /* The host name is ignored on a Unix socket; the path selects the endpoint. */
    char url[512];
    if (snprintf(url, sizeof url, "http://srppod%s", path) >= (int)sizeof url) {
        fprintf(stderr, "score: path too long\n");
        return 2;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "X-SRPPO-Client: score.c");  /* the name the scheduler shares by */
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request.size);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L);  /* the daemon's default deadline is 300 s */

    int status = 1;
    CURLcode result = curl_easy_perform(curl);
    long code = 0;
    if (result != CURLE_OK) {
        fprintf(stderr, "score: %s: %s\n", socket_path, curl_easy_strerror(result));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        if (code == 200) {
            fwrite(answer.data, 1, answer.size, stdout);
            fputc('\n', stdout);
            status = 0;
        } else {
            /* {"version":1,"error":{"code":"…","message":"…"}}: branch on the code, never the text. */
            fprintf(stderr, "score: HTTP %ld: %s\n", code, answer.data ? answer.data : "");
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    free(request.data);
    free(answer.data);
    return status;
}
