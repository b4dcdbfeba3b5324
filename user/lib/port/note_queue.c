// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "note_queue.h"

void note_queue_init(struct note_queue *q)
{
	memset(q, 0, sizeof(*q));
}

void note_queue_fini(struct note_queue *q)
{
	free(q->items);
	memset(q, 0, sizeof(*q));
}

static int grow(struct note_queue *q)
{
	size_t cap = q->cap ? q->cap * 2 : 8;
	struct teredo_port_event *items = malloc(cap * sizeof(*items));

	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < q->len; i++)
		items[i] = q->items[(q->head + i) % q->cap];
	free(q->items);
	q->items = items;
	q->head = 0;
	q->cap = cap;
	return 0;
}

int note_queue_push(struct note_queue *q, const struct teredo_port_event *ev)
{
	if (q->len == q->cap && grow(q))
		return -ENOMEM;
	q->items[(q->head + q->len) % q->cap] = *ev;
	q->len++;
	return 0;
}

bool note_queue_pop(struct note_queue *q, struct teredo_port_event *ev)
{
	if (!q->len)
		return false;
	*ev = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	return true;
}
