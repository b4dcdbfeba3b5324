// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the service's handling of what a client sends. The
 * input is cut into reads at its first byte's worth of offsets, as a stream
 * socket may deliver it, and fed to one connection of a service holding two
 * sockets: a sequence of calls on one connection, answered a per-turn
 * budget at a time, by a client that reads its replies or (the first byte's
 * top bit set) never does. Whatever comes in, nothing may crash or leak
 * (ASan, UBSan), and the replies must stay within the connection's bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "port_state.h"
#include "varlink_server.h"

static int ignore(void *ctx, const struct teredo_port_event *note)
{
	(void)ctx;
	(void)note;
	return 0;
}

static void service_state(struct port_state *st)
{
	struct teredo_event ev = { .ktime_ns = 1,
				   .cookie = 7,
				   .netns = 4026531840u,
				   .pid = 42,
				   .port = 40000,
				   .family = 2,
				   .kind = TEREDO_EVENT_BOUND,
				   .comm = "miredo" };

	port_state_init(st);
	port_state_apply(st, &ev, ignore, NULL);
	ev.cookie = 8;
	ev.port = 40001;
	ev.family = 10;
	port_state_apply(st, &ev, ignore, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct teredo_selection *sel;
	struct port_state st;
	struct vserver srv;
	struct vconn c;
	size_t chunk = size ? (size_t)data[0] % 64 + 1 : 1;
	int closed = 0;

	if (!sel)
		sel = teredo_selection_new(); /* kept: one for the whole run */
	service_state(&st);
	vserver_init(&srv, &st, sel, 4026531840u);
	vconn_init(&c, -1, 1000);
	for (size_t off = 0; off < size && !closed; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		size_t room = c.in.limit - c.in.len;

		if (vbuf_append(&c.in, data + off, n < room ? n : room) && room)
			abort(); /* the room was there */
		closed = vserver_process(&srv, &c, VCONN_CALLS_PER_TURN) < 0;
		if (c.out.len > c.out.limit)
			abort();
		/* A client that reads (the first byte's top bit clear) takes everything. */
		if (!(data[0] & 0x80))
			vbuf_consume(&c.out, c.out.len);
	}
	/* The calls the per-turn budget left waiting, a turn at a time, as serve.c does. */
	while (!closed && vbuf_message_len(&c.in)) {
		closed = vserver_process(&srv, &c, VCONN_CALLS_PER_TURN) < 0;
		if (c.out.len > c.out.limit)
			abort();
		vbuf_consume(&c.out, c.out.len);
	}
	vconn_fini(&c);
	vserver_fini(&srv);
	port_state_fini(&st);
	return 0;
}
