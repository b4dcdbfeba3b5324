/* SPDX-License-Identifier: MIT */
/* First-in first-out queue of notifications waiting to be received. */
#ifndef TEREDO_NOTE_QUEUE_H
#define TEREDO_NOTE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "teredo_observer.h"

struct note_queue {
	struct teredo_port_event *items;
	size_t head, len, cap;
};

void note_queue_init(struct note_queue *q);
void note_queue_fini(struct note_queue *q);
int note_queue_push(struct note_queue *q, const struct teredo_port_event *ev);
bool note_queue_pop(struct note_queue *q, struct teredo_port_event *ev);

#endif
