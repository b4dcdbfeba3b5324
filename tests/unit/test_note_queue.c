// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>

#include "note_queue.h"

Test(note_queue, fifo_across_growth_and_wrap)
{
	struct note_queue q;
	struct teredo_port_event ev = { 0 };
	uint16_t expect = 0;

	note_queue_init(&q);
	for (uint16_t i = 0; i < 5; i++) {
		ev.port = i;
		cr_assert_eq(note_queue_push(&q, &ev), 0);
	}
	for (int i = 0; i < 3; i++) {
		cr_assert(note_queue_pop(&q, &ev));
		cr_assert_eq(ev.port, expect++);
	}
	for (uint16_t i = 5; i < 40; i++) {
		ev.port = i;
		cr_assert_eq(note_queue_push(&q, &ev), 0);
	}
	while (note_queue_pop(&q, &ev))
		cr_assert_eq(ev.port, expect++);
	cr_assert_eq(expect, 40);
	cr_assert_not(note_queue_pop(&q, &ev));
	note_queue_fini(&q);
}
