/* bench/mcp/fixed_reply_server.c — the ceiling for the tools/call benchmark: a bare libevent
 * evhttp server that answers every POST /mcp with the same JSON-RPC result (the size of a
 * postly_get_workspace answer), doing no parsing, no auth and no work.
 *   fixed_reply_server   prints its port on stdout, serves until killed. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

static const char reply[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"{"
    "\\\"id\\\":"
    "\\\"ws_bench\\\",\\\"name\\\":\\\"ws_bench\\\",\\\"plan\\\":\\\"enterprise\\\","
    "\\\"timezone\\\":"
    "\\\"UTC\\\",\\\"settings\\\":{},\\\"version\\\":1,\\\"created_at\\\":\\\"2026-11-29T05:00:00."
    "000Z"
    "\\\",\\\"updated_at\\\":\\\"2026-11-29T05:00:00.000Z\\\"}\"}],\"structuredContent\":{\"id\":"
    "\"ws_bench\",\"name\":\"ws_bench\",\"plan\":\"enterprise\",\"timezone\":\"UTC\",\"settings\":{"
    "}"
    ",\"version\":1,\"created_at\":\"2026-11-29T05:00:00.000Z\",\"updated_at\":\"2026-11-29T05:00:"
    "00.000Z\"},\"isError\":false}}";

static void on_req(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    (void)arg;
    evbuffer_add_reference(out, reply, sizeof reply - 1, NULL, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", NULL);
}

int main(void)
{
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evhttp_bound_socket *s;
    struct sockaddr_storage ss;
    ev_socklen_t len = sizeof ss;
    int port = 0;
    signal(SIGPIPE, SIG_IGN);
    if (!http)
        return 1;
    evhttp_set_cb(http, "/mcp", on_req, NULL);
    s = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (!s)
        return 1;
    if (getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    printf("%d\n", port);
    fflush(stdout);
    event_base_dispatch(base);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
