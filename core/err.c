#include "err.h"

static const struct {
    const char *name;
    const char *text;
} errs[PL_ERR__COUNT] = {
    [PL_OK] = {"ok", "success"},
    [PL_ERR_NOMEM] = {"out_of_memory", "out of memory"},
    [PL_ERR_INVALID] = {"invalid", "invalid input"},
    [PL_ERR_TOO_LARGE] = {"too_large", "input too large"},
    [PL_ERR_PARSE] = {"parse_error", "syntax error"},
    [PL_ERR_NOT_FOUND] = {"not_found", "not found"},
    [PL_ERR_EXISTS] = {"exists", "already exists"},
    [PL_ERR_CONFLICT] = {"conflict", "conflict"},
    [PL_ERR_BUSY] = {"busy", "busy, try again"},
    [PL_ERR_DENIED] = {"denied", "permission denied"},
    [PL_ERR_EXPIRED] = {"expired", "expired"},
    [PL_ERR_LIMIT] = {"limit_exceeded", "limit exceeded"},
    [PL_ERR_STATE] = {"invalid_state", "not allowed in the current state"},
    [PL_ERR_CRYPTO] = {"crypto_error", "cryptographic failure"},
    [PL_ERR_IO] = {"io_error", "input/output error"},
    [PL_ERR_STORE] = {"store_error", "storage failure"},
    [PL_ERR_UNSUPPORTED] = {"unsupported", "not supported"},
    [PL_ERR_INTERNAL] = {"internal", "internal error"},
};

const char *pl_strerror(pl_rc rc)
{
    return (unsigned)rc < PL_ERR__COUNT ? errs[rc].text : "unknown error";
}

const char *pl_errname(pl_rc rc)
{
    return (unsigned)rc < PL_ERR__COUNT ? errs[rc].name : "unknown";
}
