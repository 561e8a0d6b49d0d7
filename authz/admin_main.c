/* authz/admin_main.c — postly-admin (see authz/admin.h and authz/admin_exec.h). */
#include <stdio.h>

#include "authz/admin.h"
#include "authz/admin_exec.h"

int main(int argc, char **argv)
{
    return az_admin_run(argc, argv, stdin, stdout, stderr, 0, az_admin_exec_cmds,
                        az_admin_exec_cmds_count);
}
