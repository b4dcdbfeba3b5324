// SPDX-License-Identifier: MIT
/*
 * io.teredo.Observer and org.varlink.service, answered from the service's
 * state. Every call is checked before it is used: a message that is not a
 * JSON object with a string "method" is malformed and ends the connection
 * after its error reply; unknown members of "parameters" are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"
#include "varlink_server.h"

#define SERVICE_INTERFACE "org.varlink.service"

static const char interface_description[] =
	"# The UDP port of the Teredo client (Miredo), as the host's one\n"
	"# teredo-observer sees it through eBPF. See teredo-observer(8).\n"
	"interface io.teredo.Observer\n"
	"\n"
	"# A Teredo client socket got its port (bound) or went away (released).\n"
	"type Record (\n"
	"  kind: (bound, released),\n"
	"  port: int,\n"
	"  family: string,\n"
	"  pid: int,\n"
	"  comm: string,\n"
	"  netns: int,\n"
	"  ktime_ns: int,\n"
	"  cookie: int\n"
	")\n"
	"\n"
	"# A change of the Teredo port, as NotifyTeredoPortChange reports it.\n"
	"type Event (\n"
	"  type: (initial, add, change, delete),\n"
	"  port: int,\n"
	"  old_port: int,\n"
	"  family: string,\n"
	"  pid: int,\n"
	"  comm: string,\n"
	"  netns: int,\n"
	"  ktime_ns: int,\n"
	"  cookie: int\n"
	")\n"
	"\n"
	"# What counts as the Teredo client, and the network namespace watched.\n"
	"type Selection (\n"
	"  comms: []string,\n"
	"  uids: []int,\n"
	"  pid: int,\n"
	"  cgroup: ?string,\n"
	"  match_traffic: bool,\n"
	"  all_netns: bool,\n"
	"  netns: int\n"
	")\n"
	"\n"
	"# The Teredo port now (0: none), as an initial event, and the client's\n"
	"# sockets, oldest binding first.\n"
	"method GetState() -> (\n"
	"  port: int,\n"
	"  event: Event,\n"
	"  sockets: []Record,\n"
	"  selection: Selection\n"
	")\n"
	"\n"
	"# Needs more. The first reply, and any later one with resync true, gives\n"
	"# the whole state (the sockets replace what the caller knew); then one\n"
	"# reply per socket record and one per port change, in the kernel's order.\n"
	"# With pipe true the caller asks for the replies after the first through\n"
	"# a pipe: when the first says pipe true, the pipe's read end comes with\n"
	"# its first byte (SCM_RIGHTS) and every later reply comes through it,\n"
	"# the same bytes; otherwise they come on the connection as usual.\n"
	"# With events false the port changes are left out: a caller that runs\n"
	"# its own state machine on the records needs no more.\n"
	"method Watch(pipe: ?bool, events: ?bool) -> (\n"
	"  resync: bool,\n"
	"  pipe: ?bool,\n"
	"  port: ?int,\n"
	"  event: ?Event,\n"
	"  sockets: ?[]Record,\n"
	"  selection: ?Selection,\n"
	"  record: ?Record\n"
	")\n"
	"\n"
	"# The message was not a Varlink call: the connection is closed.\n"
	"error MalformedMessage (reason: string)\n"
	"# The message exceeded the size limit: the connection is closed.\n"
	"error MessageTooLarge (limit: int)\n"
	"# This user has too many connections open: the connection is closed.\n"
	"error TooManyConnections (limit: int)\n"
	"# The connection is already streaming a Watch: calls are not taken.\n"
	"error WatchInProgress ()\n"
	"# The caller did not read its replies fast enough: the connection is\n"
	"# closed; connect again and Watch for a fresh state.\n"
	"error TooSlow ()\n";

void vserver_init(struct vserver *srv, const struct port_state *state,
		  const struct teredo_selection *sel, uint32_t netns)
{
	*srv = (struct vserver){ .state = state, .sel = sel, .netns = netns };
	vbuf_init(&srv->state_reply, VCONN_OUT_LIMIT);
	vbuf_init(&srv->info_reply, VCONN_OUT_LIMIT);
}

void vserver_fini(struct vserver *srv)
{
	vbuf_fini(&srv->state_reply);
	vbuf_fini(&srv->info_reply);
}

void vconn_init(struct vconn *c, int fd, uid_t uid)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->uid = uid;
	c->carrier_fd = c->carrier_pass = -1;
	vbuf_init(&c->in, VCONN_IN_LIMIT);
	vbuf_init(&c->out, VCONN_OUT_LIMIT);
}

void vconn_fini(struct vconn *c)
{
	vbuf_fini(&c->in);
	vbuf_fini(&c->out);
}

/* A reply with these parameters (taken), continuing or not, put in b. */
static int reply_to(struct vbuf *b, struct json_object *params, bool continues)
{
	struct json_object *msg = json_object_new_object();
	int err;

	if (!msg || !params) {
		json_object_put(msg);
		json_object_put(params);
		return -ENOMEM;
	}
	json_object_object_add(msg, "parameters", params);
	if (continues)
		json_object_object_add(msg, "continues", json_object_new_boolean(true));
	err = varlink_put(b, msg);
	json_object_put(msg);
	return err;
}

static int reply(struct vconn *c, struct json_object *params, bool continues)
{
	return reply_to(&c->out, params, continues);
}

int vserver_error(struct vconn *c, const char *error, const char *key, struct json_object *value)
{
	struct json_object *msg = json_object_new_object(), *params = json_object_new_object();
	int err = -ENOMEM;

	if (msg && params) {
		if (key) {
			json_object_object_add(params, key, value);
			value = NULL;
		}
		json_object_object_add(msg, "error", json_object_new_string(error));
		json_object_object_add(msg, "parameters", params);
		params = NULL;
		err = varlink_put(&c->out, msg);
	}
	json_object_put(value);
	json_object_put(params);
	json_object_put(msg);
	return err;
}

/* The errors of org.varlink.service, whose one parameter is a string. */
static int service_error(struct vconn *c, const char *error, const char *key, const char *value)
{
	char name[64];

	snprintf(name, sizeof(name), SERVICE_INTERFACE ".%s", error);
	return vserver_error(c, name, key, key ? json_object_new_string(value) : NULL);
}

static struct json_object *sockets_json(const struct port_state *st)
{
	struct json_object *arr = json_object_new_array();
	const struct port_holder **sorted;
	size_t n = st->n;

	if (!arr)
		return NULL;
	/* Oldest binding first: a client rebuilding from the list gets the same order. */
	sorted = calloc(n + 1, sizeof(*sorted));
	if (!sorted) {
		json_object_put(arr);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		while (j > 0 && sorted[j - 1]->order > st->holders[i].order) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = &st->holders[i];
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, varlink_record_json(&sorted[i]->bound));
	free(sorted);
	return arr;
}

/* GetState's parameters, which Watch's first reply also carries. */
static struct json_object *state_json(const struct vserver *srv)
{
	struct json_object *o = json_object_new_object();
	struct teredo_port_event initial;

	if (!o)
		return NULL;
	port_state_initial(srv->state, &initial);
	json_object_object_add(o, "port", json_object_new_int(initial.port));
	json_object_object_add(o, "event", event_json(&initial));
	json_object_object_add(o, "sockets", sockets_json(srv->state));
	json_object_object_add(o, "selection", selection_to_json(srv->sel, srv->netns));
	return o;
}

struct json_object *vserver_resync_reply(const struct vserver *srv)
{
	struct json_object *o = state_json(srv);

	if (o)
		json_object_object_add(o, "resync", json_object_new_boolean(true));
	return o;
}

static struct json_object *info_json(void)
{
	struct json_object *o = json_object_new_object(), *ifaces = json_object_new_array();

	if (!o || !ifaces) {
		json_object_put(o);
		json_object_put(ifaces);
		return NULL;
	}
	json_object_array_add(ifaces, json_object_new_string(SERVICE_INTERFACE));
	json_object_array_add(ifaces, json_object_new_string(VARLINK_INTERFACE));
	json_object_object_add(o, "vendor", json_object_new_string("teredo-observer"));
	json_object_object_add(o, "product", json_object_new_string("teredo-observer"));
	json_object_object_add(o, "version", json_object_new_string(TEREDO_OBSERVER_VERSION));
	json_object_object_add(o, "url", json_object_new_string("man:teredo-observer(8)"));
	json_object_object_add(o, "interfaces", ifaces);
	return o;
}

/* org.varlink.service's description of itself, as the spec gives it. */
static const char service_description[] =
	"interface org.varlink.service\n"
	"method GetInfo() -> (vendor: string, product: string, version: string, url: string,"
	" interfaces: []string)\n"
	"method GetInterfaceDescription(interface: string) -> (description: string)\n"
	"error InterfaceNotFound (interface: string)\n"
	"error MethodNotFound (method: string)\n"
	"error MethodNotImplemented (method: string)\n"
	"error InvalidParameter (parameter: string)\n"
	"error PermissionDenied ()\n"
	"error ExpectedMore ()\n";

static struct json_object *description_json(const char *text)
{
	struct json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, "description", json_object_new_string(text));
	return o;
}

struct call {
	const char *method;
	struct json_object *params; /* an object, maybe empty */
	bool more, oneway;
};

static bool is_listed(const char *name, const char *const *names)
{
	for (; names && *names; names++)
		if (!strcmp(name, *names))
			return true;
	return false;
}

/* The first parameter not among the allowed (NULL-terminated; NULL: none allowed), or NULL. */
static const char *unexpected_parameter(struct json_object *params, const char *const *allowed)
{
	json_object_object_foreach(params, key, val)
	{
		(void)val;
		if (!is_listed(key, allowed))
			return key;
	}
	return NULL;
}

static int describe(struct vconn *c, const struct call *call)
{
	static const char *const allowed[] = { "interface", NULL };
	const char *name, *bad = unexpected_parameter(call->params, allowed);

	if (bad)
		return service_error(c, "InvalidParameter", "parameter", bad);
	if (varlink_get_string(call->params, "interface", &name))
		return service_error(c, "InvalidParameter", "parameter", "interface");
	if (!strcmp(name, VARLINK_INTERFACE))
		return reply(c, description_json(interface_description), false);
	if (!strcmp(name, SERVICE_INTERFACE))
		return reply(c, description_json(service_description), false);
	return service_error(c, "InterfaceNotFound", "interface", name);
}

/* A boolean parameter of Watch: 1 true, 0 false, fallback when absent, -1 not a boolean. */
static int flag(const struct call *call, const char *name, int fallback)
{
	struct json_object *v;

	if (!json_object_object_get_ex(call->params, name, &v))
		return fallback;
	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static int watch(const struct vserver *srv, struct vconn *c, const struct call *call)
{
	static const char *const allowed[] = { "pipe", "events", NULL };
	const char *bad = unexpected_parameter(call->params, allowed);
	int want = flag(call, "pipe", 0), events = flag(call, "events", 1);
	struct json_object *params;
	size_t start = c->out.len;
	bool piped;
	int err;

	if (!bad && want < 0)
		bad = "pipe";
	if (!bad && events < 0)
		bad = "events";
	if (bad)
		return service_error(c, "InvalidParameter", "parameter", bad);
	if (!call->more)
		return service_error(c, "ExpectedMore", NULL, NULL);
	c->watching = true;
	c->records_only = !events;
	piped = want && srv->open_carrier && !srv->open_carrier(srv->carrier_ctx, c);
	params = vserver_resync_reply(srv);
	if (piped && params)
		json_object_object_add(params, "pipe", json_object_new_boolean(true));
	err = reply(c, params, true);
	if (piped && !err) {
		c->pass_at = start;
		c->to_socket = c->out.len;
	}
	return err;
}

/* An interface's method name after its last dot, when the interface is iface. */
static const char *method_of(const char *method, const char *iface)
{
	size_t n = strlen(iface);

	if (strncmp(method, iface, n) || method[n] != '.' || strchr(method + n + 1, '.'))
		return NULL;
	return method + n + 1;
}

/* GetState: the reply of this state, encoded once. */
static int get_state(struct vserver *srv, struct vconn *c)
{
	struct vbuf *cached = &srv->state_reply;

	if (!cached->len || srv->state_changes != srv->state->changes) {
		cached->len = 0;
		srv->state_changes = srv->state->changes;
		if (reply_to(cached, state_json(srv), false))
			return -ENOMEM;
	}
	return vbuf_append(&c->out, cached->data, cached->len);
}

/* GetInfo: one reply for the whole run, encoded once. */
static int get_info(struct vserver *srv, struct vconn *c)
{
	struct vbuf *cached = &srv->info_reply;

	if (!cached->len && reply_to(cached, info_json(), false))
		return -ENOMEM;
	return vbuf_append(&c->out, cached->data, cached->len);
}

static int dispatch(struct vserver *srv, struct vconn *c, const struct call *call)
{
	const char *m, *bad;

	if ((m = method_of(call->method, SERVICE_INTERFACE))) {
		if (!strcmp(m, "GetInterfaceDescription"))
			return describe(c, call);
		if (strcmp(m, "GetInfo"))
			return service_error(c, "MethodNotFound", "method", call->method);
		bad = unexpected_parameter(call->params, NULL);
		return bad ? service_error(c, "InvalidParameter", "parameter", bad)
			   : get_info(srv, c);
	}
	if (!(m = method_of(call->method, VARLINK_INTERFACE))) {
		char iface[256];
		const char *dot = strrchr(call->method, '.');
		int n = dot ? (int)(dot - call->method) : (int)strlen(call->method);

		snprintf(iface, sizeof(iface), "%.*s", n, call->method);
		return service_error(c, "InterfaceNotFound", "interface", iface);
	}
	if (!strcmp(m, "Watch"))
		return watch(srv, c, call);
	if (strcmp(m, "GetState"))
		return service_error(c, "MethodNotFound", "method", call->method);
	bad = unexpected_parameter(call->params, NULL);
	if (bad)
		return service_error(c, "InvalidParameter", "parameter", bad);
	return get_state(srv, c);
}

/* Why a message is not a call, or NULL when call was filled from it. */
static const char *parse_call(struct json_object *msg, struct call *call)
{
	struct json_object *v;

	memset(call, 0, sizeof(*call));
	if (!json_object_is_type(msg, json_type_object))
		return "a message must be a JSON object";
	if (varlink_get_string(msg, "method", &call->method))
		return "a call needs a string \"method\"";
	if (json_object_object_get_ex(msg, "parameters", &v) && v) {
		if (!json_object_is_type(v, json_type_object))
			return "\"parameters\" must be an object";
		call->params = v;
	}
	if (json_object_object_get_ex(msg, "more", &v) && v) {
		if (!json_object_is_type(v, json_type_boolean))
			return "\"more\" must be a boolean";
		call->more = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(msg, "oneway", &v) && v) {
		if (!json_object_is_type(v, json_type_boolean))
			return "\"oneway\" must be a boolean";
		call->oneway = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(msg, "upgrade", &v) && json_object_get_boolean(v))
		return "upgrade is not offered";
	return NULL;
}

static int malformed(struct vconn *c, const char *reason)
{
	c->closing = true;
	(void)vserver_error(c, VARLINK_INTERFACE ".MalformedMessage", "reason",
			    json_object_new_string(reason));
	return -1;
}

/* One message of len bytes (its NUL included) at the start of c->in. */
static int handle_message(struct vserver *srv, struct vconn *c, size_t len)
{
	struct json_object *msg, *empty = NULL;
	const char *why;
	struct call call;
	int err;

	if (memchr(c->in.data, '\0', len - 1))
		return malformed(c, "empty message");
	msg = json_tokener_parse(c->in.data);
	if (!msg)
		return malformed(c, "not JSON");
	why = parse_call(msg, &call);
	if (why) {
		json_object_put(msg);
		return malformed(c, why);
	}
	if (!call.params)
		call.params = empty = json_object_new_object();
	if (c->watching) {
		err = vserver_error(c, VARLINK_INTERFACE ".WatchInProgress", NULL, NULL);
	} else if (call.oneway) {
		err = 0; /* no method here does anything but answer: nothing to do */
	} else {
		err = dispatch(srv, c, &call);
	}
	json_object_put(empty);
	json_object_put(msg);
	return err ? -1 : 0;
}

int vserver_process(struct vserver *srv, struct vconn *c, unsigned int max_calls)
{
	int answered = 0;
	ssize_t len;

	while (!c->closing && max_calls && (len = vbuf_message_len(&c->in)) != 0) {
		if (len < 0) {
			c->closing = true;
			(void)vserver_error(c, VARLINK_INTERFACE ".MessageTooLarge", "limit",
					    json_object_new_int(VARLINK_MAX_MESSAGE));
			return -1;
		}
		if (handle_message(srv, c, len))
			return -1;
		vbuf_consume(&c->in, len);
		max_calls--;
		answered++;
	}
	return c->closing ? -1 : answered;
}
