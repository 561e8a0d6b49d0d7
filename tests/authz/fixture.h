/* tests/authz/fixture.h — helpers shared by the authz tests: a temporary data directory. */
#ifndef POSTLY_TESTS_AUTHZ_FIXTURE_H
#define POSTLY_TESTS_AUTHZ_FIXTURE_H

/* mkdtemp() under $TMPDIR (or /tmp); dir gets the path. Returns 0 on success. */
int fx_tmpdir(char dir[256]);

/* rm -r dir (best effort). */
void fx_rmrf(const char *dir);

#endif
