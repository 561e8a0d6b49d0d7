/*
 * core/clock.h — an injectable clock, so that nothing in the project reads the time directly
 * and tests never sleep.
 *
 * Production code receives a `const core_clock *` in its context and calls core_clock_now_ms().
 * Tests use core_fake_clock and move time forward with core_fake_clock_advance().
 * Any thread may call core_clock_now_ms(); a fake clock is not synchronised (tests own it).
 */
#ifndef POSTLY_CORE_CLOCK_H
#define POSTLY_CORE_CLOCK_H

#include <stdint.h>

typedef struct core_clock {
    /* Milliseconds since the Unix epoch, UTC. */
    int64_t (*now_ms)(const struct core_clock *self);
} core_clock;

/* The real wall clock (CLOCK_REALTIME). The returned pointer is static and never freed. */
const core_clock *core_clock_real(void);

/* Milliseconds since the epoch from c, or from the real clock when c is NULL. */
int64_t core_clock_now_ms(const core_clock *c);

/* Seconds since the epoch (rounded down). */
int64_t core_clock_now_s(const core_clock *c);

/* A clock that only moves when told to. Initialise with core_fake_clock_init(). */
typedef struct core_fake_clock {
    core_clock base; /* pass &fake.base wherever a core_clock is expected */
    int64_t now_ms;
} core_fake_clock;

void core_fake_clock_init(core_fake_clock *fc, int64_t start_ms);
void core_fake_clock_advance(core_fake_clock *fc, int64_t delta_ms);

#endif
