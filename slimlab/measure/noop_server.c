/* slimlab-noop-server: a server with nothing in it. `-addr HOST:PORT` (numeric IPv4), answers
 * every request with 200 "ok\n" and exits 0 on SIGTERM. Timed in a container as a server image
 * is (spawn to the first healthy answer), it is the engine's floor for servers, as noop.c is
 * for CLIs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "-addr") != 0) {
        fprintf(stderr, "usage: %s -addr HOST:PORT\n", argv[0]);
        return 2;
    }
    char host[64];
    const char *colon = strrchr(argv[2], ':');
    if (!colon || (size_t)(colon - argv[2]) >= sizeof host) {
        fprintf(stderr, "bad address %s\n", argv[2]);
        return 2;
    }
    memcpy(host, argv[2], colon - argv[2]);
    host[colon - argv[2]] = 0;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[2]);
        return 2;
    }
    signal(SIGTERM, stop);
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0) {
        perror("listen");
        return 1;
    }
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                                 "Connection: close\r\n\r\nok\n";
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0)
            continue;
        char request[2048];
        if (read(client, request, sizeof request) > 0 && write(client, answer, sizeof answer - 1) < 0)
            perror("write");
        close(client);
    }
}
