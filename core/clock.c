#include "clock.h"

#include <time.h>

static int64_t real_now_ms(const core_clock *self)
{
    (void)self;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const core_clock real_clock = {real_now_ms};

const core_clock *core_clock_real(void)
{
    return &real_clock;
}

int64_t core_clock_now_ms(const core_clock *c)
{
    if (!c)
        c = &real_clock;
    return c->now_ms(c);
}

int64_t core_clock_now_s(const core_clock *c)
{
    return core_clock_now_ms(c) / 1000;
}

static int64_t fake_now_ms(const core_clock *self)
{
    return ((const core_fake_clock *)self)->now_ms;
}

void core_fake_clock_init(core_fake_clock *fc, int64_t start_ms)
{
    fc->base.now_ms = fake_now_ms;
    fc->now_ms = start_ms;
}

void core_fake_clock_advance(core_fake_clock *fc, int64_t delta_ms)
{
    fc->now_ms += delta_ms;
}
