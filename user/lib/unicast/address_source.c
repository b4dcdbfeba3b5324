// SPDX-License-Identifier: MIT
/*
 * rtnetlink, through libmnl: an RTM_GETLINK and an RTM_GETADDR dump, then the
 * link, IPv4 address and IPv6 address groups, each batch of which is followed
 * by the dumps again (see address_source_read). Replies and notifications
 * share one socket and one callback: each message is the whole state of its
 * object, so their order inside a batch does not matter.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address_source.h"
#include "last_error.h"

/* Dumps send up to 32 KiB per datagram (a link with its statistics is ~1.5 KiB). */
#define SOURCE_BUF_SIZE 32768

static const unsigned int watched_groups[] = { RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
					       RTNLGRP_IPV6_IFADDR };

static uint64_t mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int apply_message(const struct nlmsghdr *nlh, void *data)
{
	struct address_source *src = data;
	int err = address_view_apply(&src->view, nlh, src->received_ns);

	if (err == -ENOMEM) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	/* A malformed message (-EINVAL) is left out; the next one about it will do. */
	return MNL_CB_OK;
}

/* One datagram: 0, 1 when it ended the dump seq, or a negative errno. */
static int receive_once(struct address_source *src, uint32_t seq)
{
	ssize_t n = mnl_socket_recvfrom(src->nl, src->buf, SOURCE_BUF_SIZE);
	int ret;

	if (n < 0 && errno == ENOBUFS) {
		src->lost = true;
		return 0;
	}
	if (n < 0)
		return set_last_error(-errno, "reading rtnetlink: %s", strerror(errno));
	src->received_ns = mono_now_ns();
	ret = mnl_cb_run(src->buf, (size_t)n, seq, src->portid, apply_message, src);
	if (ret == MNL_CB_ERROR)
		return set_last_error(-errno, "rtnetlink dump: %s", strerror(errno));
	return seq && ret == MNL_CB_STOP;
}

static int dump(struct address_source *src, uint16_t type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(src->buf);
	uint32_t seq = ++src->seq;
	int ret;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	/* Both requests start with the family byte; AF_UNSPEC asks for all. */
	if (type == RTM_GETLINK)
		mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	else
		mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg));
	if (mnl_socket_sendto(src->nl, nlh, nlh->nlmsg_len) < 0)
		return set_last_error(-errno, "rtnetlink dump request: %s", strerror(errno));
	do
		ret = receive_once(src, seq);
	while (ret == 0);
	return ret < 0 ? ret : 0;
}

/* Links first, so that every address finds its interface. Again while the kernel dropped some. */
static int dump_all(struct address_source *src)
{
	int err;

	do {
		src->lost = false;
		address_view_clear(&src->view);
		err = dump(src, RTM_GETLINK);
		if (!err)
			err = dump(src, RTM_GETADDR);
	} while (!err && src->lost);
	return err;
}

static int join_groups(struct address_source *src)
{
	for (size_t i = 0; i < sizeof(watched_groups) / sizeof(watched_groups[0]); i++)
		if (mnl_socket_setsockopt(src->nl, NETLINK_ADD_MEMBERSHIP,
					  (void *)&watched_groups[i],
					  sizeof(watched_groups[i])) < 0)
			return set_last_error(-errno, "joining rtnetlink group %u: %s",
					      watched_groups[i], strerror(errno));
	return 0;
}

int address_source_open(struct address_source *src, bool watch, const char *teredo_name)
{
	int err;

	memset(src, 0, sizeof(*src));
	address_view_init(&src->view, teredo_name);
	src->buf = malloc(SOURCE_BUF_SIZE);
	if (!src->buf)
		return set_last_error(-ENOMEM, "out of memory");
	src->nl = mnl_socket_open(NETLINK_ROUTE);
	if (!src->nl) {
		err = set_last_error(-errno, "rtnetlink socket: %s", strerror(errno));
		goto cleanup;
	}
	if (mnl_socket_bind(src->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = set_last_error(-errno, "binding the rtnetlink socket: %s", strerror(errno));
		goto cleanup;
	}
	src->portid = mnl_socket_get_portid(src->nl);
	err = watch ? join_groups(src) : 0;
	if (!err)
		err = dump_all(src);
	if (!err)
		return 0;
cleanup:
	address_source_close(src);
	return err;
}

int address_source_fd(const struct address_source *src)
{
	return mnl_socket_get_fd(src->nl);
}

/*
 * Notifications wake us, the dump is the truth: the kernel announces the
 * link-local address it makes when a link comes up only once DAD is over,
 * so a view built from notifications alone would miss a tentative address.
 */
int address_source_read(struct address_source *src)
{
	int err = receive_once(src, 0);

	return err < 0 ? err : dump_all(src);
}

void address_source_close(struct address_source *src)
{
	if (src->nl)
		mnl_socket_close(src->nl);
	src->nl = NULL;
	free(src->buf);
	src->buf = NULL;
	address_view_fini(&src->view);
}
