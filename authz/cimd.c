/* authz/cimd.c — Client ID Metadata Documents (MCP 2025-11-25 basic/authorization,
 * draft-ietf-oauth-client-id-metadata-document). Not built yet: a client_id that is an
 * https URL is refused as unknown (the metadata still advertises the feature; see
 * docs/authz.md "Not done yet"). */
#include "server_int.h"

pl_rc az_cimd_fetch(az_server *s, const char *url, az_client *out);

pl_rc az_cimd_fetch(az_server *s, const char *url, az_client *out)
{
    (void)s;
    (void)url;
    (void)out;
    return PL_ERR_NOT_FOUND;
}
