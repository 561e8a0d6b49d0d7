/* authz/admin_main.c — postly-admin (see authz/admin.h). */
#include <stdio.h>

#include "authz/admin.h"

int main(int argc, char **argv)
{
    return az_admin_main(argc, argv, stdin, stdout, stderr, 0);
}
