/*
 * authz/admin.h — the postly-admin command line as a function, so tests can run it
 * in-process. Commands (docs/authz.md "postly-admin"):
 *   users add NAME [--password-stdin]      prints a generated password once unless stdin given
 *   users passwd NAME [--password-stdin]
 *   users disable NAME | users enable NAME (disable also revokes every grant of the user)
 *   workspaces add ID NAME [--plan PLAN]   (plan default "free")
 *   workspaces plan ID PLAN
 *   members add USERNAME WORKSPACE ROLE    (owner, admin, editor, viewer)
 *   clients add ID --name NAME --redirect URI [--redirect URI]... [--auth none|basic|post]
 *               [--class preregistered|first_party] [--introspect]
 *               (confidential clients: the secret is printed once)
 * Global: --data DIR (default ./var).
 * Exit codes: 0 done, 1 the operation failed (message on stderr), 2 usage error.
 */
#ifndef POSTLY_AUTHZ_ADMIN_H
#define POSTLY_AUTHZ_ADMIN_H

#include <stdio.h>

#include "core/clock.h"

/* A command kept outside postly_authz (authz/admin_exec.h): it gets the data directory and the
 * words after its noun, and returns an exit code like az_admin_main (2 prints its usage). */
typedef struct az_admin_ext {
    const char *noun;
    int (*fn)(const char *data, int argc, char **argv, FILE *out, FILE *err);
    const char *usage; /* lines appended to the usage text */
} az_admin_ext;

/* az_admin_main with extra commands (looked up before the built-in ones; they do not open the
 * authorization server's store). */
int az_admin_run(int argc, char **argv, FILE *in, FILE *out, FILE *err, unsigned long scrypt_n,
                 const az_admin_ext *ext, size_t n_ext);

/* Runs one command. out/err receive the output; in supplies --password-stdin. scrypt_n 0 =
 * the store default (tests pass a small one). */
int az_admin_main(int argc, char **argv, FILE *in, FILE *out, FILE *err, unsigned long scrypt_n);

#endif
